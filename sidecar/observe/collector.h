#pragma once
// What attributes kernel activity to tasks. The BPF collector is the real one;
// when it cannot load, the sidecar keeps serving with no collector and says why
// (status.collector_note), so a Prefect task is never affected by our absence.

#include <kj/string.h>
#include <sys/types.h>

#include <cstdint>

namespace tracer {

// What a task's threads and their descendants did between track() and untrack().
struct TaskActivity {
  uint64_t spawned = 0;
  uint64_t execs = 0;
  uint64_t lost = 0;
};

class Collector {
 public:
  virtual ~Collector() noexcept(false) = default;

  virtual kj::StringPtr name() const = 0;
  // Empty when the collector sees everything it should; otherwise why not.
  virtual kj::StringPtr degradedReason() const = 0;

  // Starts attributing `hostTid` and everything it forks from now on to `slot`.
  virtual void track(uint32_t slot, pid_t hostTid) = 0;
  // Stops attributing `hostTid` (a pooled thread moves on) and returns the slot's totals.
  virtual TaskActivity untrack(uint32_t slot, pid_t hostTid) = 0;

  // Events that could not be charged to any task.
  virtual uint64_t unattributedLost() = 0;
};

// Used when no kernel observer could load: tasks are registered and timed, nothing more.
class NoCollector final: public Collector {
 public:
  explicit NoCollector(kj::String reason): reason(kj::mv(reason)) {}
  kj::StringPtr name() const override { return "none"; }
  kj::StringPtr degradedReason() const override { return reason; }
  void track(uint32_t, pid_t) override {}
  TaskActivity untrack(uint32_t, pid_t) override { return {}; }
  uint64_t unattributedLost() override { return 0; }

 private:
  kj::String reason;
};

}  // namespace tracer
