// tracerctl costs' rollup (report/cost_rollup) over a real SQLite history:
// sums per window and the trend between them, computed here by hand; runs
// without a cost counted and left out; currencies never added; and the rows
// whose runs the history does not all have, said so.
#include <capnp/message.h>
#include <catch2/catch.hpp>
#include <kj/async-io.h>

#include <string>
#include <vector>

#include "contract_json.h"
#include "policy/observation.h"
#include "report/cost_rollup.h"
#include "store/history.h"
#include "store/history_reader.h"
#include "store/run_record.h"
#include "temp_directory.h"
#include "tracer.capnp.h"

using namespace tracer;

namespace {

constexpr int64_t HOUR = 3600ll * 1000000000;
constexpr uint64_t DAY = 24 * HOUR;
constexpr int64_t NOW = 1796515200ll * 1000000000;  // 2026-12-06 00:00 UTC
// With --since 1d: the window is (NOW - 24h, NOW], the previous one (NOW - 48h, NOW - 24h].

struct Run {
  std::string key, task, flow, deployment;
  int64_t hoursAgo;
  double used = 0, allocated = 0, waste = 0;
  std::string currency = "USD";
  bool costUnknown = false;  // the advisor could not price it
  std::string rowJson = "";   // written as it is instead of the row, when set
};

void record(History& history, const Run& run) {
  capnp::MallocMessageBuilder message;
  auto row = message.initRoot<proto::TaskRow>();
  row.setTask(run.task);
  row.setCostUsed(run.used);
  row.setCostAllocated(run.allocated);
  row.setCostWaste(run.waste);
  row.setCurrency(run.currency);
  if (run.costUnknown) {
    auto unknown = row.initUnknown(3);
    unknown.set(0, "cost_allocated");
    unknown.set(1, "cost_used");
    unknown.set(2, "cost_waste");
  }
  RunContext context;
  context.flow = run.flow;
  context.deployment = run.deployment;
  context.finishedAtNs = NOW - run.hoursAgo * HOUR;
  history.recordTask(TaskHistoryKey{run.key, run.task}, context,
                     observationOf(context, row.asReader()),
                     run.rowJson.empty() ? toContractJson(row.asReader()) : kj::str(run.rowJson));
}

// A flow run's footprint, and the flow run itself (every finished one is recorded).
void recordFlowRun(History& history, Run run) {
  run.task = policy::FLOW_RUN_TASK;
  record(history, run);
  history.recordFlow(run.key, "id", NOW - run.hoursAgo * HOUR, 1, "completed");
}

// The report as tracerctl --json prints it, to compare whole rows by. Unless
// a case says otherwise, a sidecar watched throughout both windows.
struct Report {
  explicit Report(History& history, kj::StringPtr by, uint64_t since = DAY,
                  bool watchedThroughout = true) {
    if (watchedThroughout) {
      History watcher(history.path(), history.runsKept());  // another sidecar's life
      watcher.watchedUntil(NOW - 2 * int64_t(since));
      watcher.watchedUntil(NOW);
    }
    history.flush();
    auto io = kj::setupAsyncIo();  // the rollup answers from a thread of its own
    message = CostRollup(history.path(), history.runsKept()).costs(by, since, NOW)
                  .wait(io.waitScope);
  }
  proto::CostReport::Reader get() { return message->getRoot<proto::CostReport>(); }
  // The row of `name` (deployment, flow, or task by --by) in `currency`.
  proto::CostRow::Reader row(kj::StringPtr name, kj::StringPtr currency = "USD") {
    for (auto row: get().getRows()) {
      bool named = row.getDeployment() == name || row.getTask() == name ||
                   (row.getDeployment().size() == 0 && row.getFlow() == name);
      if (named && row.getCurrency() == currency) return row;
    }
    FAIL("no row " << name.cStr() << " in " << currency.cStr() << ": "
                   << toContractJson(get()).cStr());
    KJ_UNREACHABLE;
  }
  kj::Own<capnp::MessageBuilder> message;
};

std::vector<std::string> texts(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  for (auto text: list) out.push_back(text);
  return out;
}

}  // namespace

TEST_CASE("costs add up each window's priced footprints by deployment, with the trend", "[costs]") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 200);
  std::string a = "deployment:aaaaaaaa-0000-0000-0000-000000000000";
  // The window: 2.00 + 1.00 used, 5 + 5 allocated, 3 + 4 waste.
  recordFlowRun(history, {a, "", "etl", "nightly", 2, 1.00, 5, 4});
  recordFlowRun(history, {a, "", "etl", "nightly-v2", 1, 2.00, 5, 3});
  // The previous window: 1.50 used. Exactly 24 h ago is the previous window's end.
  recordFlowRun(history, {a, "", "etl", "nightly", 30, 1.00, 4, 3});
  recordFlowRun(history, {a, "", "etl", "nightly", 24, 0.50, 1, 0.5});
  // Before both windows, and a task run (not the flow run's cost): neither counts.
  recordFlowRun(history, {a, "", "etl", "nightly", 49, 100, 100, 0});
  record(history, {a, "extract", "etl", "nightly", 1, 50, 50, 0});

  Report report(history, "deployment");
  CHECK(report.get().getBy() == "deployment");
  CHECK(report.get().getWindowStartNs() == NOW - 24 * HOUR);
  CHECK(report.get().getWindowEndNs() == NOW);
  REQUIRE(report.get().getRows().size() == 1);
  auto row = report.row("nightly-v2");  // named by its latest run
  CHECK(row.getKey() == a);
  CHECK(row.getFlow() == "etl");
  CHECK(row.getTask() == "");
  CHECK(row.getRuns() == 2);
  CHECK(row.getUsed() == Approx(3.0));
  CHECK(row.getAllocated() == Approx(10.0));
  CHECK(row.getWaste() == Approx(7.0));
  CHECK(row.getPreviousRuns() == 2);
  CHECK(row.getPreviousUsed() == Approx(1.5));
  CHECK(row.getTrend() == Approx(1.0));  // 3.00 / 1.50 - 1: twice as much
  CHECK(row.getUnknown().size() == 0);
  CHECK_FALSE(row.getPartial());
  CHECK(row.getUnpricedRuns() == 0);
  CHECK(report.get().getNotes().size() == 0);

  // A longer window holds them all: (NOW - 72h, NOW] has 1 + 2 + 0.5 + 1 + 100 used.
  Report longer(history, "deployment", 3 * DAY);
  CHECK(longer.row("nightly-v2").getRuns() == 5);
  CHECK(longer.row("nightly-v2").getUsed() == Approx(104.5));
  CHECK(longer.row("nightly-v2").getPreviousRuns() == 0);
  CHECK(texts(longer.row("nightly-v2").getUnknownWhy()) ==
        std::vector<std::string>{"the previous window has no cost to compare with"});
}

TEST_CASE("runs without a cost are counted, left out of the sums, and make the trend unknown", "[costs]") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 200);
  std::string b = "flow:report";
  recordFlowRun(history, {b, "", "report", "", 1, 2.00, 4, 2});
  Run unknownCost{b, "", "report", "", 2, 0, 0, 0};
  unknownCost.costUnknown = true;
  recordFlowRun(history, unknownCost);
  Run earlierVersion{b, "", "report", "", 3, 9, 9, 9};
  earlierVersion.currency = "";  // written before costs were: no currency
  recordFlowRun(history, earlierVersion);
  Run notJson{b, "", "report", "", 4, 7, 7, 7};
  notJson.rowJson = "{\"currency\": \"USD\", \"cost_used\": 7";  // cut short
  recordFlowRun(history, notJson);
  // A newer version's row, with a field this build does not know: its cost counts.
  Run newer{b, "", "report", "", 5, 0.5, 1, 0.5};
  newer.rowJson = R"x({"task":"(flow run)","currency":"USD","cost_used":0.5,"cost_allocated":1,)x"
                  R"x("cost_waste":0.5,"unknown":[],"gpu_seconds":3})x";
  recordFlowRun(history, newer);
  recordFlowRun(history, {b, "", "report", "", 26, 1.00, 4, 3});

  Report report(history, "deployment");
  auto row = report.row("report");
  CHECK(row.getRuns() == 2);
  CHECK(row.getUsed() == Approx(2.5));  // not 2 + 0 + 9 + 7 + 0.5
  CHECK(row.getAllocated() == Approx(5.0));
  CHECK(row.getUnpricedRuns() == 3);
  CHECK_FALSE(row.getPartial());
  CHECK(row.getPreviousUsed() == Approx(1.0));
  CHECK(texts(row.getUnknown()) == std::vector<std::string>{"trend"});
  CHECK(texts(row.getUnknownWhy()) == std::vector<std::string>{"3 runs of the window have no cost"});
  // As JSON the unknown trend is null, not a number.
  CHECK(std::string(toContractJson(row).cStr()).find("\"trend\":null") != std::string::npos);
}

TEST_CASE("costs in two currencies are two rows, never one sum", "[costs]") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 200);
  std::string c = "flow:billing";
  recordFlowRun(history, {c, "", "billing", "", 5, 1.00, 2, 1, "USD"});
  recordFlowRun(history, {c, "", "billing", "", 4, 3.00, 6, 3, "USD"});
  recordFlowRun(history, {c, "", "billing", "", 2, 10.00, 20, 10, "EUR"});
  Run unpriced{c, "", "billing", "", 1, 0, 0, 0, ""};
  recordFlowRun(history, unpriced);

  Report report(history, "deployment");
  REQUIRE(report.get().getRows().size() == 2);
  auto eur = report.row("billing", "EUR");
  auto usd = report.row("billing", "USD");
  CHECK(eur.getRuns() == 1);
  CHECK(eur.getUsed() == Approx(10.0));
  CHECK(usd.getRuns() == 2);
  CHECK(usd.getUsed() == Approx(4.0));
  CHECK(usd.getWaste() == Approx(4.0));
  // The unpriced run is counted once: on the row of the newest priced run's currency.
  CHECK(eur.getUnpricedRuns() == 1);
  CHECK(usd.getUnpricedRuns() == 0);
  CHECK(report.get().getRows()[0].getCurrency() == "EUR");  // the most used first
}

TEST_CASE("a task whose history is full since after the window's start is partial", "[costs]") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 3);  // --history-runs 3
  std::string d = "flow:busy";
  // Four flow runs: the history keeps the newest 3 footprints, 1 h to 3 h ago.
  for (int64_t hoursAgo: {5, 3, 2, 1}) recordFlowRun(history, {d, "", "busy", "", hoursAgo, 1, 2, 1});
  // A task that keeps 3 runs, the oldest in the previous window: only that one is partial.
  std::string e = "flow:calm";
  for (int64_t hoursAgo: {30, 2, 1}) recordFlowRun(history, {e, "", "calm", "", hoursAgo, 1, 2, 1});

  Report report(history, "deployment");
  auto busy = report.row("busy");
  CHECK(busy.getRuns() == 3);
  CHECK(busy.getUsed() == Approx(3.0));
  CHECK(busy.getPartial());
  // The flow run of 5 h ago lost its footprint to retention: said once, not
  // again as a flow run without one.
  CHECK(texts(busy.getPartialWhy()) ==
        std::vector<std::string>{"the history keeps the newest 3 runs of each task; its runs "
                                 "before 2026-12-05 21:00 UTC are gone"});
  CHECK(texts(busy.getUnknown()) == std::vector<std::string>{"trend", "previous_used"});
  CHECK(texts(busy.getUnknownWhy()) ==
        std::vector<std::string>{"the previous window is partial: the history keeps the newest 3 "
                                 "runs of each task; its runs before 2026-12-05 21:00 UTC are gone",
                                 "the window is partial"});

  auto calm = report.row("calm");
  CHECK_FALSE(calm.getPartial());
  CHECK(calm.getRuns() == 2);
  CHECK(calm.getPreviousRuns() == 1);
  CHECK(texts(calm.getUnknown()) == std::vector<std::string>{"trend", "previous_used"});
  CHECK(texts(calm.getUnknownWhy()) ==
        std::vector<std::string>{"the previous window is partial: the history keeps the newest 3 "
                                 "runs of each task; its runs before 2026-12-04 18:00 UTC are gone"});
}

TEST_CASE("stretches no sidecar watched make each row of their window partial", "[costs]") {
  testing::TempDirectory state;
  std::string d = "flow:etl";
  {
    // One sidecar's life: 30 h to 20 h ago.
    History first(state.file("history.db"), 200);
    first.watchedUntil(NOW - 30 * HOUR);
    recordFlowRun(first, {d, "", "etl", "", 25, 1, 2, 1});
    first.watchedUntil(NOW - 20 * HOUR);
    first.flush();
  }
  // The next one's, from 2 h ago; and a gap of 20 s in it, too short to say.
  History history(state.file("history.db"), 200);
  history.watchedUntil(NOW - 2 * HOUR);
  recordFlowRun(history, {d, "", "etl", "", 1, 1, 2, 1});
  history.watchedUntil(NOW);
  Report report(history, "deployment", DAY, false);

  const std::string current =
      "no sidecar watched 18.0 h of it (the longest stretch from 2026-12-05 04:00 UTC to "
      "2026-12-05 22:00 UTC): runs that finished then are not in the history";
  const std::string previous =
      "no sidecar watched 18.0 h of it (the longest stretch from 2026-12-04 00:00 UTC to "
      "2026-12-04 18:00 UTC): runs that finished then are not in the history";
  auto etl = report.row("etl");
  CHECK((etl.getRuns() == 1 && etl.getPreviousRuns() == 1));
  CHECK(etl.getPartial());
  CHECK(texts(etl.getPartialWhy()) == std::vector<std::string>{current});
  CHECK(texts(etl.getUnknown()) == std::vector<std::string>{"trend", "previous_used"});
  CHECK(texts(etl.getUnknownWhy()) ==
        std::vector<std::string>{"the previous window is partial: " + previous,
                                 "the window is partial"});
  CHECK(texts(report.get().getNotes()) ==
        std::vector<std::string>{"the window is partial: " + current,
                                 "the previous window is partial: " + previous});

  // Watched throughout but for 20 s between two lives: nothing to say.
  {
    History again(state.file("history.db"), 200);
    again.watchedUntil(NOW - 20 * HOUR + 20 * 1000000000ll);
    again.watchedUntil(NOW - 2 * HOUR - 20 * 1000000000ll);
    again.flush();
  }
  History before(state.file("history.db"), 200);
  before.watchedUntil(NOW - 60 * HOUR);
  before.watchedUntil(NOW - 30 * HOUR);
  before.flush();
  Report whole(history, "deployment", DAY, false);
  CHECK_FALSE(whole.row("etl").getPartial());
  CHECK(whole.row("etl").getTrend() == Approx(0.0));
  CHECK(whole.get().getNotes().size() == 0);
}

TEST_CASE("an idle sidecar writes that it watches at its start, then every 10 s", "[costs]") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 200);
  auto watched = [&]() {
    HistoryReader reader(history.path(), history.runsKept());
    return reader.watchedBetween(0, NOW);
  };
  using Span = std::pair<int64_t, int64_t>;
  history.watchedUntil(NOW - 60 * 1000000000ll);
  history.flush();  // nothing held: its start is written at once
  CHECK(watched() == std::vector<Span>{{NOW - 60 * 1000000000ll, NOW - 60 * 1000000000ll}});
  history.watchedUntil(NOW - 55 * 1000000000ll);
  history.flush();  // 5 s more: not written yet
  CHECK(watched() == std::vector<Span>{{NOW - 60 * 1000000000ll, NOW - 60 * 1000000000ll}});
  history.watchedUntil(NOW - 45 * 1000000000ll);
  history.flush();
  CHECK(watched() == std::vector<Span>{{NOW - 60 * 1000000000ll, NOW - 45 * 1000000000ll}});
  history.watchedUntil(NOW - 40 * 1000000000ll);
  history.flush();  // 5 s more: not written yet
  CHECK(watched() == std::vector<Span>{{NOW - 60 * 1000000000ll, NOW - 45 * 1000000000ll}});
  history.watchedUntil(NOW - 35 * 1000000000ll);
  history.flush();  // one row per life, rewritten
  CHECK(watched() == std::vector<Span>{{NOW - 60 * 1000000000ll, NOW - 35 * 1000000000ll}});
  {
    // At its stop, a sidecar writes its last seconds too.
    History stopping(state.file("history.db"), 200);
    stopping.watchedUntil(NOW - 10 * 1000000000ll);
    stopping.flush();
    stopping.watchedUntil(NOW - 7 * 1000000000ll);
  }
  CHECK(watched() == std::vector<Span>{{NOW - 60 * 1000000000ll, NOW - 35 * 1000000000ll},
                                       {NOW - 10 * 1000000000ll, NOW - 7 * 1000000000ll}});
}

TEST_CASE("flow runs without a footprint make their deployment's row partial", "[costs]") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 200);
  std::string f = "deployment:ffffffff-0000-0000-0000-000000000000";
  // 10 flow runs in the window, 7 with a footprint (0.5 used each).
  for (int64_t hoursAgo = 1; hoursAgo <= 10; ++hoursAgo) {
    if (hoursAgo <= 7) {
      recordFlowRun(history, {f, "", "etl", "hourly", hoursAgo, 0.5, 1, 0.5});
    } else {
      history.recordFlow(f, "no-policy", NOW - hoursAgo * HOUR, 1, "completed");
    }
  }
  // A deployment none of whose flow runs has a footprint: named by its newest task run.
  std::string g = "deployment:99999999-0000-0000-0000-000000000000";
  record(history, {g, "load", "etl", "adhoc", 100, 1, 1, 0});
  history.recordFlow(g, "x", NOW - 3 * HOUR, 1, "completed");
  history.recordFlow(g, "y", NOW - 2 * HOUR, 1, "failed");

  Report report(history, "deployment");
  auto hourly = report.row("hourly");
  CHECK(hourly.getRuns() == 7);
  CHECK(hourly.getUsed() == Approx(3.5));
  CHECK(hourly.getPartial());
  CHECK(texts(hourly.getPartialWhy()) ==
        std::vector<std::string>{"3 of 10 flow runs have no footprint"});

  auto adhoc = report.row("adhoc", "");
  CHECK(adhoc.getKey() == g);
  CHECK(adhoc.getFlow() == "etl");
  CHECK(adhoc.getRuns() == 0);
  CHECK(adhoc.getPartial());
  CHECK(texts(adhoc.getPartialWhy()) ==
        std::vector<std::string>{"2 of 2 flow runs have no footprint"});

  // By flow the two deployments are one flow, one row.
  Report byFlow(history, "flow");
  REQUIRE(byFlow.get().getRows().size() == 1);
  auto etl = byFlow.row("etl");
  CHECK(etl.getKey() == "");
  CHECK(etl.getRuns() == 7);
  CHECK(texts(etl.getPartialWhy()) ==
        std::vector<std::string>{"5 of 12 flow runs have no footprint"});
}

TEST_CASE("by flow adds up a flow's deployments; by task, each task of each deployment", "[costs]") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 200);
  std::string eu = "deployment:eeeeeeee-0000-0000-0000-000000000000";
  std::string us = "deployment:dddddddd-0000-0000-0000-000000000000";
  recordFlowRun(history, {eu, "", "etl", "eu", 1, 1.00, 3, 2});
  recordFlowRun(history, {us, "", "etl", "us", 2, 2.00, 3, 1});
  recordFlowRun(history, {"flow:other", "", "other", "", 3, 0.25, 1, 0.75});
  record(history, {eu, "extract", "etl", "eu", 1, 0.40, 2, 1.6});
  record(history, {eu, "extract", "etl", "eu", 5, 0.60, 2, 1.4});
  record(history, {us, "extract", "etl", "us", 2, 0.70, 2, 1.3});
  record(history, {us, "load", "etl", "us", 2, 0.30, 2, 1.7});

  Report byDeployment(history, "deployment");
  CHECK(byDeployment.get().getRows().size() == 3);
  CHECK(byDeployment.row("eu").getUsed() == Approx(1.0));
  CHECK(byDeployment.row("us").getUsed() == Approx(2.0));

  Report byFlow(history, "flow");
  REQUIRE(byFlow.get().getRows().size() == 2);
  auto etl = byFlow.row("etl");  // 1.00 + 2.00 used, 3 + 3 allocated, 2 + 1 waste
  CHECK(etl.getRuns() == 2);
  CHECK(etl.getUsed() == Approx(3.0));
  CHECK(etl.getAllocated() == Approx(6.0));
  CHECK(etl.getWaste() == Approx(3.0));
  CHECK(etl.getDeployment() == "");
  CHECK(byFlow.row("other").getUsed() == Approx(0.25));

  Report byTask(history, "task");
  REQUIRE(byTask.get().getRows().size() == 3);  // footprints are not tasks
  for (auto row: byTask.get().getRows()) CHECK(row.getTask() != policy::FLOW_RUN_TASK);
  auto rows = byTask.get().getRows();
  // Most used first: eu's extract 0.40 + 0.60, us's extract 0.70, us's load 0.30.
  CHECK(rows[0].getKey() == eu);
  CHECK(rows[0].getTask() == "extract");
  CHECK(rows[0].getRuns() == 2);
  CHECK(rows[0].getUsed() == Approx(1.0));
  CHECK(rows[0].getWaste() == Approx(3.0));
  CHECK(rows[1].getKey() == us);
  CHECK(rows[1].getTask() == "extract");
  CHECK(rows[1].getUsed() == Approx(0.7));
  CHECK(rows[2].getTask() == "load");
  REQUIRE(byTask.get().getNotes().size() == 1);
  CHECK(std::string(byTask.get().getNotes()[0]).find("tasks' costs overlap") != std::string::npos);
}

TEST_CASE("costs refuse a grouping they do not know, and default to deployments and 7 days", "[costs]") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 200);
  CostRollup rollup(history.path(), history.runsKept());
  auto io = kj::setupAsyncIo();
  CHECK_THROWS_WITH(rollup.costs("owner", DAY, NOW),
                    Catch::Contains("costs: by 'owner' is not one of deployment, flow, task"));
  auto report = rollup.costs("", 0, NOW).wait(io.waitScope);
  auto answer = report->getRoot<proto::CostReport>().asReader();
  CHECK(answer.getBy() == "deployment");
  CHECK(answer.getWindowStartNs() == NOW - 7 * int64_t(DAY));
  CHECK(answer.getRows().size() == 0);
}

TEST_CASE("an answer lists the rows that used most, and counts the rest", "[costs]") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 20);
  // One flow run each of COST_ROWS_MAX + 1 flows, flow i having used i + 1.
  for (size_t i = 0; i <= COST_ROWS_MAX; ++i) {
    recordFlowRun(history, Run{kj::str("flow:f", i).cStr(), "", kj::str("f", i).cStr(), "", 1,
                               double(i + 1), 10000, 10000 - double(i + 1)});
  }
  Report report(history, "flow");
  REQUIRE(report.get().getRows().size() == COST_ROWS_MAX);
  CHECK(report.get().getRowsNotListed() == 1);
  CHECK(report.get().getRows()[0].getFlow() == kj::str("f", COST_ROWS_MAX));  // used most
  for (auto row: report.get().getRows()) CHECK(row.getFlow() != "f0");       // used least
}

TEST_CASE("an answer lists no more rows than fit in one RPC message", "[costs]") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 20);
  // Flows whose 2,000-character names make each row some 2 KiB: 300 of them
  // would be past the RPC's 512 KiB message limit.
  size_t flows = 300;
  for (size_t i = 0; i < flows; ++i) {
    std::string name = kj::str(i, "-").cStr() + std::string(2000, 'x');
    recordFlowRun(history, Run{"flow:" + name, "", name, "", 1, double(i + 1), 10, 1});
  }
  Report report(history, "flow");
  auto rows = report.get().getRows();
  CHECK(rows.size() < flows);
  CHECK(rows.size() + report.get().getRowsNotListed() == flows);
  CHECK(report.get().totalSize().wordCount <= COST_ROWS_WORDS_MAX + 64);
  CHECK(std::string(rows[0].getFlow()).rfind(kj::str(flows - 1, "-").cStr(), 0) == 0);
}

TEST_CASE("a rollup answers from its own thread while the event loop goes on, one rollup at a time", "[costs]") {
  testing::TempDirectory state;
  History history(state.file("history.db"), 200);
  for (int i = 0; i < 5000; ++i) {
    record(history, {"deployment:d", kj::str("task-", i % 25).cStr(), "etl", "nightly", 1 + i % 20,
                     0.01, 0.02, 0.01});
  }
  history.flush();
  CostRollup rollup(history.path(), history.runsKept());
  auto io = kj::setupAsyncIo();
  auto answer = rollup.costs("task", DAY, NOW);
  // The rollup of 5,000 runs is not done the moment it starts, and the loop
  // is free meanwhile: a second rollup is refused rather than queued.
  CHECK_FALSE(answer.poll(io.waitScope));
  CHECK_THROWS_WITH(rollup.costs("task", DAY, NOW), Catch::Contains("another rollup is running"));
  auto report = answer.wait(io.waitScope);
  auto rows = report->getRoot<proto::CostReport>().getRows();
  REQUIRE(rows.size() == 25);
  uint32_t runs = 0;
  for (auto row: rows) runs += row.getRuns();
  CHECK(runs == 5000);
  // Answered, the next one may start.
  CHECK(rollup.costs("task", DAY, NOW).wait(io.waitScope)->getRoot<proto::CostReport>()
            .getRows().size() == 25);
}
