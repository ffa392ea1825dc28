#pragma once
// CPU use over sampling windows, in bounded memory: a live task's, and a flow
// run's footprint (observe/flow_footprint.h). At most MAX_WINDOWS windows
// (2 KiB) are kept: a long run's windows widen (1 s, 2 s, 4 s, ...) instead
// of growing in number, so a run costs the same memory after a day as after
// five minutes.

#include <kj/vector.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace tracer {

class CpuWindows {
 public:
  static constexpr size_t MAX_WINDOWS = 256;

  void add(uint64_t ns, uint64_t cpuNs) {
    float seconds = ns / 1e9f, cpuSeconds = cpuNs / 1e9f;
    if (windows.size() > 0 && samplesInLast < samplesPerWindow) {
      auto& last = windows.back();
      last.seconds += seconds;
      last.cpuSeconds += cpuSeconds;
      ++samplesInLast;
      return;
    }
    if (windows.size() == MAX_WINDOWS) {
      // Halve the resolution: neighbours merge. Average CPU stays exact; p95
      // and max become those of the wider windows.
      for (size_t i = 0; i < MAX_WINDOWS / 2; ++i) {
        auto& a = windows[2 * i];
        auto& b = windows[2 * i + 1];
        windows[i] = Window{a.seconds + b.seconds, a.cpuSeconds + b.cpuSeconds};
      }
      windows.resize(MAX_WINDOWS / 2);
      samplesPerWindow *= 2;
    }
    windows.add(Window{seconds, cpuSeconds});
    samplesInLast = 1;
  }

  size_t size() const { return windows.size(); }

  // Cores busy over the newest window (0 before the first).
  double lastCores() const {
    return windows.size() > 0 && windows.back().seconds > 0
               ? windows.back().cpuSeconds / windows.back().seconds
               : 0;
  }

  struct Percentiles {
    double p95 = 0;  // nearest rank
    double max = 0;
  };
  Percentiles cores() const {
    kj::Vector<double> perWindow(windows.size());
    for (auto& w: windows) perWindow.add(w.seconds > 0 ? w.cpuSeconds / w.seconds : 0);
    if (perWindow.empty()) return {};
    std::sort(perWindow.begin(), perWindow.end());
    size_t rank = static_cast<size_t>(std::ceil(0.95 * perWindow.size()));
    return {perWindow[rank > 0 ? rank - 1 : 0], perWindow.back()};
  }

 private:
  // 8 bytes, not 24: at 10,000 live tasks of a minute each the windows were
  // the largest thing the sidecar held. A float keeps 24 bits, a relative
  // error of 6e-8: a 1 s window to 60 ns, far below what a report shows.
  struct Window {
    float seconds;
    float cpuSeconds;
  };
  kj::Vector<Window> windows;
  uint32_t samplesPerWindow = 1;
  uint32_t samplesInLast = 0;  // the others hold samplesPerWindow each
};

}  // namespace tracer
