// History's cache of recent runs: bounded however many tasks clients name,
// and what it forgot is read back from SQLite whole.
#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <string>

#include "contract_json.h"
#include "store/history.h"
#include "store/run_record.h"
#include "temp_directory.h"
#include "tracer.capnp.h"

using namespace tracer;

namespace {

void record(History& history, const TaskHistoryKey& key, double cpuS, int64_t finishedAtNs) {
  capnp::MallocMessageBuilder message;
  auto row = message.initRoot<proto::TaskRow>();
  row.setTask(key.task);
  row.setCpuS(cpuS);
  RunContext context;
  context.flow = "etl";
  context.finishedAtNs = finishedAtNs;
  history.recordTask(key, context, observationOf(context, row.asReader()),
                     toContractJson(row.asReader()));
}

}  // namespace

TEST_CASE("the history caches a bounded number of tasks and reads forgotten ones back") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 10);
  TaskHistoryKey first{"flow:etl", "first"};
  record(history, first, 1, 1);
  CHECK(history.recent(first, 10).size() == 1);  // cached from here on

  size_t tasks = history.cachedTasksMax() + 100;
  for (size_t i = 0; i < tasks; ++i) {
    TaskHistoryKey other{"flow:etl", "task-" + std::to_string(i)};
    record(history, other, 1, 2);
    REQUIRE(history.recent(other, 10).size() == 1);
  }
  CHECK(history.cachedTasks() == history.cachedTasksMax());

  // `first` was forgotten: a run recorded meanwhile is not lost to it.
  record(history, first, 2, 3);
  history.flush();
  auto runs = history.recent(first, 10);
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].cpuNs == 1000000000);
  CHECK(runs[1].cpuNs == 2000000000);
}
