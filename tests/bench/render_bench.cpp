// What the sidecar's finish path spends writing JSON: a finished task's row
// (report/task_row, written as contract JSON for the history and the table
// artifact, once per task at its advice) and a flow run's artifacts
// (report/flow_artifacts, once per flow run, its rows made here).
//
//   render_bench [TASKS [ROUNDS]]     (default: 5000 tasks, 7 rounds)
//
// The reports look like the ones a flood of short tasks makes on a host
// without marked starts: names, measurements, a finding, a recommendation
// and three fields unknown (a late registration). Prints the median of the
// rounds, with the settings that made it.
#include <capnp/message.h>
#include <kj/vector.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "contract_json.h"
#include "report/flow_artifacts.h"
#include "report/task_row.h"

namespace {

using Clock = std::chrono::steady_clock;

void fillReport(tracer::proto::TaskReport::Builder report, int i) {
  report.setTaskRunId(kj::str("6f1c2a9e-0d4b-4c7e-9a55-", 100000000000 + i));
  report.setFlowRunId("0b7f6a8c-3f1e-4d2a-8c9b-5e4d3c2b1a09");
  report.setTaskName(kj::str("transform-", i % 50));
  report.setTaskKey(kj::str("transform-", i % 50, "-8c9b5e4d"));
  report.setState(tracer::proto::RunState::COMPLETED);
  report.setWallNs(1200000 + i);
  report.setStartTimeNs(1765000000000000000 + int64_t(i) * 1000000);
  report.setPolicy("built-in-default");
  auto cpu = report.getCpu();
  cpu.setUserNs(800000 + i);
  cpu.setSystemNs(120000);
  cpu.setAvgCores(0.76);
  cpu.setP95Cores(0.98);
  cpu.setMaxCores(1.0);
  auto sched = report.getSched();
  sched.setRunqueueWaitNs(35000);
  sched.setSleepNs(210000);
  sched.getSleepByCause().setNetworkNs(150000);
  sched.getSleepByCause().setLockNs(60000);
  auto memory = report.getMemory();
  memory.setPeakRssBytes(96ull << 20);
  memory.setSharedProcess(true);
  auto io = report.getIo();
  io.setRchar(1 << 20);
  io.setWchar(64 << 10);
  auto unknown = report.initUnknown(3);
  unknown.set(0, "sched.sleep_ns");
  unknown.set(1, "net.tx_bytes");
  unknown.set(2, "proc.spawned");
  auto findings = report.initFindings(1);
  findings[0].setKind("low_cpu_utilization");
  findings[0].setSeverity("info");
  findings[0].setSummary("transform used 0.76 of 2 cores allocated (38 %)");
  findings[0].setPolicy("built-in-default");
  auto recommendation = report.initRecommendation();
  recommendation.setCpuCores(1.0);
  recommendation.setMemoryBytes(128ull << 20);
}

template <typename Work>
double medianMs(int rounds, Work work) {
  std::vector<double> took;
  for (int r = 0; r < rounds; ++r) {
    auto began = Clock::now();
    work();
    took.push_back(std::chrono::duration<double, std::milli>(Clock::now() - began).count());
  }
  std::sort(took.begin(), took.end());
  return took[took.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int tasks = argc > 1 ? atoi(argv[1]) : 5000;
  int rounds = argc > 2 ? atoi(argv[2]) : 7;
  if (tasks <= 0 || rounds <= 0) {
    fprintf(stderr, "usage: %s [TASKS [ROUNDS]]\n", argv[0]);
    return 2;
  }
  std::vector<kj::Own<capnp::MallocMessageBuilder>> messages;
  kj::Vector<tracer::proto::TaskReport::Reader> reports;
  for (int i = 0; i < tasks; ++i) {
    messages.push_back(kj::heap<capnp::MallocMessageBuilder>(512));
    auto report = messages.back()->initRoot<tracer::proto::TaskReport>();
    fillReport(report, i);
    reports.add(report.asReader());
  }
  size_t bytes = 0;
  double rowsMs = medianMs(rounds, [&]() {
    bytes = 0;
    for (auto report: reports) {
      capnp::MallocMessageBuilder message(256);
      auto row = message.initRoot<tracer::proto::TaskRow>();
      tracer::fillTaskRow(report, row);
      bytes += tracer::toContractJson(capnp::toDynamic(row.asReader())).size();
    }
  });
  capnp::MallocMessageBuilder footprintMessage;
  auto footprint = footprintMessage.initRoot<tracer::proto::TaskReport>();
  fillReport(footprint, 0);
  tracer::FlowRunSummary flow{kj::str("0b7f6a8c-3f1e-4d2a-8c9b-5e4d3c2b1a09"), kj::str("etl"),
                              kj::str(), kj::str(), kj::str("COMPLETED"), 60000000000};
  size_t artifactBytes = 0;
  double artifactsMs = medianMs(rounds, [&]() {
    artifactBytes = 0;
    for (auto& artifact: tracer::renderFlowArtifacts(flow, footprint, reports)) {
      artifactBytes += artifact.body.size();
    }
  });
  printf("render_bench, %d tasks, median of %d rounds:\n", tasks, rounds);
  printf("  a task's row (fillTaskRow + contract JSON): %.2f us each (%zu bytes each)\n",
         rowsMs * 1000 / tasks, bytes / tasks);
  printf("  a flow run's artifacts, rows made there:    %.1f ms, %.2f us a task (%zu bytes)\n",
         artifactsMs, artifactsMs * 1000 / tasks, artifactBytes);
  return 0;
}
