#include "policy/detectors.h"

#include <algorithm>

#include "policy/finding_text.h"

namespace tracer::policy {

std::vector<Finding> detect(const Policy& policy, const Observation& run,
                            kj::ArrayPtr<const Observation> earlier, Scope scope) {
  std::vector<Finding> found;
  auto add = [&](std::string kind, std::string severity, std::string summary,
                 std::vector<std::pair<std::string, std::string>> evidence) {
    found.push_back(Finding{std::move(kind), std::move(severity), std::move(summary),
                            std::move(evidence), policy.name});
  };
  const auto& f = policy.findings;
  double cpuShare = run.wallNs ? double(run.cpuNs) / run.wallNs : 0;  // cores busy on average

  if (scope == Scope::FLOW_RUN) {
    if (run.allocatedCores > 0 &&
        run.p95Cores < policy.cpu.flagBelowUtilization * run.allocatedCores) {
      add("cpu_over_allocation", "warning",
          "the flow run's processes used " + fixed(run.p95Cores) + " cores (p95) of " +
              fixed(run.allocatedCores) + " allocated",
          {{"p95_cores", fixed(run.p95Cores)}, {"allocated_cores", fixed(run.allocatedCores)},
           {"utilization", percent(run.p95Cores / run.allocatedCores)}});
    }
    if (run.allocatedBytes > 0 &&
        run.peakRssBytes < policy.memory.flagBelowUtilization * run.allocatedBytes) {
      add("memory_over_allocation", "warning",
          "the flow run's processes held at most " + mib(run.peakRssBytes) + " of " +
              mib(run.allocatedBytes) + " allocated",
          {{"peak_rss", mib(run.peakRssBytes)}, {"allocated", mib(run.allocatedBytes)},
           {"utilization", percent(share(run.peakRssBytes, run.allocatedBytes))}});
    }
    if (run.allocatedBytes > 0 && run.peakRssBytes > 0.9 * run.allocatedBytes) {
      add("memory_pressure", "warning",
          "the flow run's processes held " + mib(run.peakRssBytes) +
              ", within 10% of the allocation",
          {{"peak_rss", mib(run.peakRssBytes)}, {"allocated", mib(run.allocatedBytes)}});
    }
    return found;
  }
  if (run.oomKills > 0) {
    add("memory_pressure", "critical",
        std::to_string(run.oomKills) + " process(es) killed by the OOM killer",
        {{"oom_kills", std::to_string(run.oomKills)}, {"peak_rss", mib(run.peakRssBytes)},
         {"allocated", mib(run.allocatedBytes)}});
  }
  double blocked = share(run.blockedIoNs, run.wallNs);
  if (f.ioBound && blocked > f.ioBoundBlockedShareAbove) {
    add("io_bound", "info", percent(blocked) + " of the run was spent blocked on disk I/O",
        {{"blocked_io", seconds(run.blockedIoNs)}, {"wall", seconds(run.wallNs)}});
  }
  // Waits by cause. A child's wait is no finding (the child's work is the
  // task's own), nor a timer's (the code asked for the sleep).
  double network = share(run.networkWaitNs, run.wallNs);
  if (f.externalWait && network > f.externalWaitNetworkShareAbove &&
      cpuShare < f.externalWaitCpuShareBelow) {
    std::vector<std::pair<std::string, std::string>> evidence = {
        {"network_wait", seconds(run.networkWaitNs)}, {"cpu", seconds(run.cpuNs)},
        {"wall", seconds(run.wallNs)}};
    // The endpoint it waited on longest, when it is known.
    std::string on;
    if (!run.topEndpoint.empty()) {
      on = "; " + seconds(run.topEndpointWaitNs) + " (" +
           percent(share(run.topEndpointWaitNs, run.wallNs)) + ") waiting on " + run.topEndpoint;
      evidence.push_back({"endpoint", run.topEndpoint});
      evidence.push_back({"endpoint_wait", seconds(run.topEndpointWaitNs)});
    }
    add("external_wait", "info",
        "mostly waiting on the network: " + seconds(run.networkWaitNs) + " (" + percent(network) +
            " of the run), " + fixed(cpuShare) + " cores busy on average" + on,
        std::move(evidence));
  }
  // A thread task that both runs and waits on a futex a large share of its
  // run takes turns with its process's other threads: in a Python process,
  // for the GIL. A lock held by a thread that sleeps leaves no CPU to share.
  double locked = share(run.lockWaitNs, run.wallNs);
  bool gil = f.gil && run.sharedProcess && locked > f.gilLockShareAbove &&
             cpuShare > f.gilCpuShareAbove;
  if (gil) {
    add("gil_contention", "warning",
        "thread tasks of one process take turns: waiting on a lock (Python's GIL) " +
            percent(locked) + " of the run while running " + percent(cpuShare) +
            "; run such tasks in processes (a process-based task runner) or use code "
            "that releases the GIL (numpy, hashlib, I/O)",
        {{"lock_wait", seconds(run.lockWaitNs)}, {"cpu", seconds(run.cpuNs)},
         {"wall", seconds(run.wallNs)}});
  }
  if (f.lockWait && !gil && locked > f.lockWaitShareAbove) {
    add("lock_wait", "info",
        "waiting on locks (futex: a lock, a condition, Python's GIL) " +
            seconds(run.lockWaitNs) + " (" + percent(locked) + " of the run)",
        {{"lock_wait", seconds(run.lockWaitNs)}, {"wall", seconds(run.wallNs)}});
  }
  // Contention needs a task that wanted a CPU for a real part of its run: a
  // mostly-sleeping task's few microseconds of waiting are noise.
  double queued = share(run.runqueueNs, run.runqueueNs + run.cpuNs);
  bool wantedCpu = run.runqueueNs + run.cpuNs >= run.wallNs / 10;
  if (f.contention && wantedCpu && queued > f.contentionRunqueueShareAbove) {
    add("cpu_contention", "warning",
        "runnable but waiting for a CPU " + percent(queued) + " of the time it wanted one",
        {{"runqueue_wait", seconds(run.runqueueNs)}, {"cpu", seconds(run.cpuNs)}});
  }
  if (f.idle && run.wallNs >= f.idleMinWallNs && cpuShare < f.idleCpuShareBelow) {
    add("idle", "warning", "idle: " + fixed(cpuShare, 3) + " cores busy on average over " +
                               seconds(run.wallNs),
        {{"cpu", seconds(run.cpuNs)}, {"wall", seconds(run.wallNs)}});
  }
  if (f.churn && run.shortLived > f.churnShortLivedAbove) {
    add("subprocess_churn", "info",
        std::to_string(run.shortLived) + " processes lived less than 100 ms",
        {{"short_lived", std::to_string(run.shortLived)}});
  }
  if (f.slower && earlier.size() >= policy.history.minRuns) {
    std::vector<uint64_t> walls;
    for (auto& e: earlier) walls.push_back(e.wallNs);
    std::sort(walls.begin(), walls.end());
    double median = walls.size() % 2 ? walls[walls.size() / 2]
                                     : (walls[walls.size() / 2 - 1] + walls[walls.size() / 2]) / 2.0;
    if (median > 0 && run.wallNs > f.slowerWallVsMedianAbove * median) {
      add("slower_than_usual", "warning",
          "took " + fixed(run.wallNs / median, 1) + "x the median of the last " +
              std::to_string(walls.size()) + " runs",
          {{"wall", seconds(run.wallNs)}, {"median_wall", seconds(uint64_t(median))}});
    }
  }
  return found;
}

bool atLeast(const std::string& severity, const std::string& threshold) {
  auto rank = [](const std::string& s) {
    return s == "critical" ? 3 : s == "warning" ? 2 : s == "info" ? 1 : 0;
  };
  return !threshold.empty() && rank(severity) >= rank(threshold);
}

std::vector<std::string> describeFindingRules(const FindingRules& f) {
  auto rule = [](const std::string& kind, bool on, const std::string& settings) {
    return kind + ": " + (on ? settings : "off");
  };
  return {
      rule("io_bound", f.ioBound, "blocked_io_share_above " + fixed(f.ioBoundBlockedShareAbove)),
      rule("external_wait", f.externalWait,
           "network_share_above " + fixed(f.externalWaitNetworkShareAbove) +
               ", cpu_share_below " + fixed(f.externalWaitCpuShareBelow)),
      rule("lock_wait", f.lockWait, "lock_share_above " + fixed(f.lockWaitShareAbove)),
      rule("gil_contention", f.gil,
           "lock_share_above " + fixed(f.gilLockShareAbove) + ", cpu_share_above " +
               fixed(f.gilCpuShareAbove)),
      rule("cpu_contention", f.contention,
           "runqueue_share_above " + fixed(f.contentionRunqueueShareAbove)),
      rule("idle", f.idle,
           "cpu_share_below " + fixed(f.idleCpuShareBelow) + ", min_wall " +
               fixed(f.idleMinWallNs / 1e9, 0) + "s"),
      rule("subprocess_churn", f.churn,
           "short_lived_above " + std::to_string(f.churnShortLivedAbove)),
      rule("slower_than_usual", f.slower,
           "wall_vs_median_above " + fixed(f.slowerWallVsMedianAbove)),
      rule("separate_tasks", f.separateTasks,
           "light_wall_share_above " + fixed(f.separateLightWallShareAbove)),
      rule("task_artifact", !f.taskArtifact.empty(), "for findings at " + f.taskArtifact +
                                                         " or above"),
      rule("live_artifact", f.liveArtifactNs > 0,
           "every " + fixed(f.liveArtifactNs / 1e9, 0) + "s while a flow run runs"),
  };
}

}  // namespace tracer::policy
