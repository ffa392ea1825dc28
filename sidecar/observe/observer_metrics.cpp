#include "observe/observer_metrics.h"

#include <capnp/message.h>

namespace tracer {

void ObserverMetrics::renderMetrics(PrometheusText& out) {
  capnp::MallocMessageBuilder message;
  auto status = message.initRoot<proto::SidecarStatus>();
  table.fillStatus(status);
  auto load = collector.load();
  out.single("tracer_live_flow_runs", "gauge", "Flow runs in progress.", status.getLiveFlowRuns());
  out.single("tracer_live_tasks", "gauge", "Tasks being observed.", status.getLiveTasks());
  out.family("tracer_flow_runs_total", "counter", "Flow runs that ended, by how.");
  out.sample("tracer_flow_runs_total", {{"end", "finished"}}, status.getFinishedFlowRuns());
  out.sample("tracer_flow_runs_total", {{"end", "crashed"}}, status.getCrashedFlowRuns());
  out.family("tracer_tasks_total", "counter", "Tasks that ended, by how.");
  out.sample("tracer_tasks_total", {{"end", "finished"}}, status.getFinishedTasks());
  out.sample("tracer_tasks_total", {{"end", "crashed"}}, status.getCrashedTasks());
  out.single("tracer_tasks_registered_late_total", "counter",
             "Tasks that, before their registration reached the sidecar, slept, used a socket "
             "or started a thread or process: those fields are unknown in their reports.",
             status.getLateTasks());
  out.single("tracer_tasks_shared_thread_total", "counter",
             "Tasks that shared their thread with tasks not nested in them (async tasks of one "
             "event loop): the fields that count their thread are unknown in their reports.",
             status.getSharedThreadTasks());

  out.single("tracer_tracked_threads", "gauge",
             "Threads the kernel observer attributes to tasks (registered and their descendants).",
             load.trackedThreads);
  out.single("tracer_tracked_processes", "gauge", "Processes among the tracked threads.",
             load.trackedProcesses);
  out.single("tracer_ringbuf_events_total", "counter",
             "Thread-exit events read from the kernel's ring buffer (bpf collector).",
             load.exitEvents);
  out.family("tracer_task_start_marks_total", "counter",
             "Task starts marked by their own thread in the kernel, by outcome: claimed by "
             "their registration, released unclaimed, refused (no slot set aside was left).");
  out.sample("tracer_task_start_marks_total", {{"outcome", "claimed"}}, load.startMarksClaimed);
  out.sample("tracer_task_start_marks_total", {{"outcome", "released"}}, load.startMarksReleased);
  out.sample("tracer_task_start_marks_total", {{"outcome", "refused"}}, load.startMarksRefused);
  out.single("tracer_threads_over_uid_quota_total", "counter",
             "Threads a tracked thread started that were not tracked: their uid's tracked "
             "threads held --max-tracked-threads-per-uid (each also a lost event of its task).",
             load.threadsOverQuota);
  out.single("tracer_events_lost_total", "counter",
             "Kernel events dropped (ring buffer full, tracking map full).",
             status.getEventsLost());
  out.single("tracer_collector_degraded", "gauge",
             "1 when the kernel observer is not fully available (see tracerctl status).",
             status.getCollectorNote().size() > 0 ? 1 : 0);
  auto unknown = collector.unknownFields();
  if (unknown.size() > 0) {
    out.family("tracer_report_field_unknown", "gauge",
               "1 for each report field the collector cannot measure here, with the reason.");
    for (auto field: unknown) {
      out.sample("tracer_report_field_unknown",
                 {{"field", field}, {"reason", status.getCollectorNote()}}, uint64_t(1));
    }
  }
}

}  // namespace tracer
