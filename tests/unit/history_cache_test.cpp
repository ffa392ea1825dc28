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

TEST_CASE("of a task's runs held at a write, the newest by finish time are kept, however many") {
  testing::TempDirectory state;
  TaskHistoryKey task{"flow:etl", "mapped"}, other{"flow:etl", "other"};
  {
    History history(state.file("history.db"), 3);
    record(history, task, 9, 9);  // written before: older than what follows keeps
    history.flush();
    // Finished out of order: the newest three are not the last three held.
    int64_t finishedAt[] = {50, 10, 60, 20, 40, 30};
    for (auto at: finishedAt) record(history, task, double(at), at);
    record(history, other, 1, 1);
    history.flush();
  }
  History reopened(state.file("history.db"), 3);  // reads SQLite, not a cache
  auto runs = reopened.recent(task, 10);
  REQUIRE(runs.size() == 3);
  CHECK(runs[0].cpuNs == 40000000000);
  CHECK(runs[1].cpuNs == 50000000000);
  CHECK(runs[2].cpuNs == 60000000000);
  CHECK(reopened.recent(other, 10).size() == 1);
}
