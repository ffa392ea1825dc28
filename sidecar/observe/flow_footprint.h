#pragma once
// A flow run's footprint: what all its processes held and used together,
// once a second. Its tasks share its allocation (a pod, a container), so a
// deployment's limits must cover this sum, not any one task's figures. Its
// processes are the flow-run process and those that joined the run (a
// process pool's workers), with their descendants.
//
// Memory: the most they held at once as far as sampling can tell, the higher
// of the largest sum of their resident memory at one sampling and the
// largest peak (VmHWM) of any one of them. Both are at most the true peak:
// what several processes held together between two samplings is missed. A
// page processes share counts for each of them, as resident memory does.
// CPU: their CPU time, with that of the children they waited for, per window.

#include <kj/array.h>
#include <kj/string.h>
#include <kj/time.h>
#include <kj/vector.h>
#include <sys/types.h>

#include <cstdint>

#include "observe/cpu_windows.h"
#include "tracer.capnp.h"

namespace tracer {

// One reading of a tree of processes.
struct TreeUsage {
  uint64_t rssBytes = 0;      // summed over the processes, each once
  uint64_t hiwaterBytes = 0;  // the highest VmHWM among them
  uint64_t userTicks = 0;     // summed, reaped children included
  uint64_t systemTicks = 0;
  uint32_t processes = 0;
  bool complete = true;  // false: more than MAX_TREE_PROCESSES, the rest not read
};

// The processes under `roots` (themselves and their descendants); nullptr
// when none of the roots is still there, or the kernel cannot list children.
constexpr uint32_t MAX_TREE_PROCESSES = 1024;
kj::Maybe<TreeUsage> readTreeUsage(kj::ArrayPtr<const pid_t> roots);

class FlowFootprint {
 public:
  // Reads the tree once as the run opens: the first window's CPU starts there.
  FlowFootprint(pid_t flowRunProcess, kj::TimePoint now);

  // A process that joined the run; a descendant of one already followed
  // adds nothing.
  void addProcess(pid_t pid);
  // One sampling (once a second).
  void sample(kj::TimePoint now);
  // The sampling at the run's end: processes gone by then are no fault.
  void sampleLast(kj::TimePoint now);

  struct Summary {
    uint64_t userNs = 0;
    uint64_t systemNs = 0;
    double p95Cores = 0;
    double maxCores = 0;
    uint64_t peakBytes = 0;
    uint32_t samples = 0;
    uint32_t maxProcesses = 0;
    kj::String unknownWhy;  // why it is not known; empty when it is
  };
  Summary summary() const;

 private:
  void read(kj::TimePoint now, bool first, bool last = false);

  kj::Vector<pid_t> roots;
  CpuWindows windows;
  kj::TimePoint lastAt;
  uint64_t lastUserTicks = 0, lastSystemTicks = 0;
  uint64_t userTicks = 0, systemTicks = 0;
  uint64_t peakBytes = 0;
  uint32_t samples = 0;
  uint32_t maxProcesses = 0;
  kj::String problem;  // the first reason a sampling could not be read whole
};

// The footprint as a TaskReport, so the policy engine judges and remembers
// it as it does a task run (under policy::FLOW_RUN_TASK): its
// CPU (cpu.*) and memory peak, every other field listed unknown. The caller
// sets the run's ids, state, wall time, allocation and OOM kills.
void fillFootprint(proto::TaskReport::Builder report, const FlowFootprint::Summary& footprint);

}  // namespace tracer
