// The history on a disk that fills up: a write it refuses is rolled back
// whole, its runs stay held (and advised from) until there is room, and then
// all of them are written; later writes are not poisoned by the failed one.

#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <string>

#include "store/history.h"
#include "store/sqlite.h"
#include "full_disk.h"

using namespace tracer;

namespace {

const TaskHistoryKey LOAD{"flow:etl", "load"};

// A run whose record takes a few pages: a handful overflow a full disk.
void recordRun(History& history, int64_t finishedAtNs) {
  RunContext context{"etl", "", "", "", {}, finishedAtNs};
  policy::Observation run;
  run.flow = "etl";
  run.task = "load";
  run.finishedAtNs = finishedAtNs;
  auto row = kj::str("{\"task\":\"", std::string(16384, 'x').c_str(), "\"}");
  history.recordTask(LOAD, context, run, row);
}

int64_t rowsIn(const std::string& path, const char* table) {
  auto db = openDatabase(path);
  Statement count(db.get(), (std::string("SELECT COUNT(*) FROM ") + table).c_str());
  count.step();
  return count.integer(0);
}

}  // namespace

TEST_CASE("a history write the full disk refuses is rolled back; its runs are written once there "
          "is room") {
  testing::FullDisk disk(4 << 20);
  auto path = disk.file("history.db");
  {
    History history(path, 100);
    recordRun(history, 1);
    history.flush();

    disk.fill();
    for (int64_t i = 2; i <= 11; ++i) recordRun(history, i);
    history.recordFlow("flow:etl", "flow-run-1", 11, 1000, "COMPLETED");
    CHECK_THROWS_WITH(history.flush(), Catch::Contains("disk is full"));
    CHECK(history.failing());
    CHECK(history.runsHeld() == 11);
    CHECK(history.recent(LOAD, 100).size() == 11);  // advice sees the held runs

    recordRun(history, 12);  // recorded while full: held too
    CHECK_THROWS(history.flush());
    CHECK(history.runsHeld() == 12);

    disk.makeRoom();
    history.flush();
    CHECK_FALSE(history.failing());
    CHECK(history.runsHeld() == 0);
    recordRun(history, 13);  // and writing goes on
    history.flush();
  }
  CHECK(rowsIn(path, "task_runs") == 13);
  CHECK(rowsIn(path, "flow_runs") == 1);
  History reopened(path, 100);
  CHECK(reopened.recent(LOAD, 100).size() == 13);
}

TEST_CASE("runs held while the history cannot write past the cap drop the oldest, counted") {
  testing::FullDisk disk(1 << 20);
  History history(disk.file("history.db"), 100);
  disk.fill();
  for (size_t i = 0; i < History::HELD_RUNS_MAX + 2; ++i) {
    history.recordFlow("flow:etl", "flow-run", int64_t(i), 1, "COMPLETED");
  }
  CHECK(history.runsHeld() == History::HELD_RUNS_MAX);
  capnp::MallocMessageBuilder message;
  auto status = message.initRoot<proto::SidecarStatus>();
  history.fillStatus(status);
  CHECK(status.getHistoryRunsDropped() == 2);
}
