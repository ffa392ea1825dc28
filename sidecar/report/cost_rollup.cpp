#include "report/cost_rollup.h"

#include <capnp/message.h>
#include <kj/debug.h>
#include <kj/thread.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "contract_json.h"
#include "ops/refuse.h"
#include "ops/wall_clock.h"
#include "policy/observation.h"
#include "store/history_reader.h"

namespace tracer {

namespace {

constexpr uint64_t DAY_NS = 24ull * 3600 * 1000000000;
constexpr uint64_t DEFAULT_SINCE_NS = 7 * DAY_NS;

constexpr const char* TASK_COSTS_OVERLAP =
    "a task's allocated cost is its flow run's allocation over the task's own window: tasks "
    "that run at once each count it, so tasks' costs overlap and do not add up to their flow "
    "run's (tracerctl costs --by deployment)";

// Stretches nobody watched that are shorter than this are not said: an idle
// history writes that the sidecar watches every 10 s
// (History::WATCHED_REWRITE_NS), so a killed sidecar's last seconds, and the
// current window's, are not known to have been watched.
constexpr int64_t UNWATCHED_SAID_ABOVE_NS = 30ll * 1000000000;

enum class Grouping { DEPLOYMENT, FLOW, TASK };

Grouping groupingNamed(kj::StringPtr by) {
  if (by.size() == 0 || by == "deployment") return Grouping::DEPLOYMENT;
  if (by == "flow") return Grouping::FLOW;
  if (by == "task") return Grouping::TASK;
  refuse(kj::str("costs: by '", by, "' is not one of deployment, flow, task"));
}

kj::StringPtr nameOf(Grouping grouping) {
  switch (grouping) {
    case Grouping::DEPLOYMENT: return "deployment";
    case Grouping::FLOW: return "flow";
    case Grouping::TASK: return "task";
  }
  KJ_UNREACHABLE;
}

// The window asked about, then the one before it, each (startNs, endNs].
enum Window : size_t { CURRENT = 0, PREVIOUS = 1 };
struct Bounds {
  int64_t startNs, endNs;
};

struct Sums {
  uint32_t runs = 0;
  double used = 0, allocated = 0, waste = 0;
};

// What one row (or one per currency) adds up, in both windows.
struct Group {
  std::string key, flow, deployment, task;
  int64_t namedAtNs = INT64_MIN;  // the finish of the run its names come from
  std::map<std::string, std::array<Sums, 2>> byCurrency;
  std::string newestCurrency;  // the row that counts the unpriced runs
  int64_t newestPricedNs = INT64_MIN;
  std::array<uint32_t, 2> unpriced{};
  std::array<std::vector<std::string>, 2> missing;  // why runs are not in the history
  std::array<uint32_t, 2> flowRuns{}, footprintless{};  // by deployment or flow
};

kj::String runsText(uint32_t runs) { return kj::str(runs, runs == 1 ? " run" : " runs"); }

// A length of time for people: "3.5 h", "2.0 d", "40 min".
std::string lengthText(int64_t ns) {
  char text[32];
  double minutes = ns / 60e9;
  if (minutes < 60) {
    snprintf(text, sizeof(text), "%.0f min", minutes);
  } else if (minutes < 48 * 60) {
    snprintf(text, sizeof(text), "%.1f h", minutes / 60);
  } else {
    snprintf(text, sizeof(text), "%.1f d", minutes / (24 * 60));
  }
  return text;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (auto& line: lines) text += (text.empty() ? "" : "; ") + line;
  return text;
}

// What a run's cost needs of its TaskRow, in this order: the history reads
// them (History::runsFinishedBetween) by their contract JSON names.
enum CostField : uint { CURRENCY, USED, ALLOCATED, WASTE, UNKNOWN, COST_FIELDS };
const kj::StringPtr COST_FIELD_NAMES[COST_FIELDS] = {"currency", "costUsed", "costAllocated",
                                                      "costWaste", "unknown"};

// Their contract JSON names ("cost_used"); getFieldByName throws for a name
// TaskRow does not have.
kj::Array<kj::String> costFieldNames() {
  auto schema = capnp::Schema::from<proto::TaskRow>();
  return KJ_MAP(name, COST_FIELD_NAMES) {
    return camelToSnake(schema.getFieldByName(name).getProto().getName());
  };
}

struct RunCost {
  std::string currency;
  double used = 0, allocated = 0, waste = 0;
};

// A run's cost is known when its policy priced it and what it used is known;
// rows an earlier version wrote have no currency, and a row that is not JSON
// (or whose fields are not what TaskRow says) has no cost to add.
kj::Maybe<RunCost> runCost(const std::string& values, kj::ArrayPtr<const kj::String> names) {
  if (values.empty()) return nullptr;
  capnp::MallocMessageBuilder message(64);
  auto json = message.initRoot<capnp::JsonValue>();
  if (kj::runCatchingExceptions([&]() { decodeJson(values, json); }) != nullptr) return nullptr;
  auto fields = json.asReader().getArray();
  if (fields.size() != COST_FIELDS || !fields[CURRENCY].isString() ||
      fields[CURRENCY].getString().size() == 0) {
    return nullptr;
  }
  RunCost cost{fields[CURRENCY].getString().cStr()};
  double* sums[] = {&cost.used, &cost.allocated, &cost.waste};
  for (CostField field: {USED, ALLOCATED, WASTE}) {
    if (!fields[field].isNumber()) return nullptr;
    *sums[field - USED] = fields[field].getNumber();
  }
  if (fields[UNKNOWN].isArray()) {
    for (auto unknown: fields[UNKNOWN].getArray()) {
      if (!unknown.isString()) return nullptr;
      for (CostField field: {USED, ALLOCATED, WASTE}) {
        if (unknown.getString() == names[field]) return nullptr;
      }
    }
  } else if (!fields[UNKNOWN].isNull()) {
    return nullptr;
  }
  return kj::mv(cost);
}

class Rollup {
 public:
  Rollup(HistoryReader& history, Grouping grouping, uint64_t sinceNs, int64_t nowNs)
      : history(history),
        grouping(grouping),
        kind(grouping == Grouping::TASK ? RunKind::TASK_RUNS : RunKind::FLOW_RUN_FOOTPRINTS),
        windows{Bounds{nowNs - int64_t(sinceNs), nowNs},
                Bounds{nowNs - 2 * int64_t(sinceNs), nowNs - int64_t(sinceNs)}} {}

  void fill(proto::CostReport::Builder out) {
    addRuns();
    markRetention();
    if (grouping != Grouping::TASK) markFootprintless();
    markUnwatched();
    out.setBy(nameOf(grouping));
    out.setWindowStartNs(windows[CURRENT].startNs);
    out.setWindowEndNs(windows[CURRENT].endNs);
    std::vector<std::string> notes;
    if (grouping == Grouping::TASK) notes.push_back(TASK_COSTS_OVERLAP);
    if (!unwatched[CURRENT].empty()) notes.push_back("the window is partial: " + unwatched[CURRENT]);
    if (!unwatched[PREVIOUS].empty()) {
      notes.push_back("the previous window is partial: " + unwatched[PREVIOUS]);
    }
    auto list = out.initNotes(notes.size());
    for (size_t i = 0; i < notes.size(); ++i) list.set(i, notes[i]);
    fillRows(out);
  }

 private:
  Window windowOf(int64_t finishedAtNs) const {
    return finishedAtNs > windows[CURRENT].startNs ? CURRENT : PREVIOUS;
  }

  std::pair<std::string, std::string> idOf(const std::string& key, const std::string& flow,
                                           const std::string& task) const {
    switch (grouping) {
      case Grouping::DEPLOYMENT: return {key, ""};
      case Grouping::FLOW: return {flow, ""};
      case Grouping::TASK: return {key, task};
    }
    KJ_UNREACHABLE;
  }

  Group& groupOf(const StoredRun& run) {
    auto& group = groups[idOf(run.key.key, run.flow, run.key.task)];
    if (run.finishedAtNs > group.namedAtNs) {
      group.namedAtNs = run.finishedAtNs;
      group.key = grouping == Grouping::FLOW ? "" : run.key.key;
      group.task = grouping == Grouping::TASK ? run.key.task : "";
      group.flow = run.flow;
      group.deployment = grouping == Grouping::FLOW ? "" : run.deployment;
    }
    keyFlows[run.key.key] = run.flow;  // runs come oldest first
    return group;
  }

  // The group of a deployment (or flow) key whose runs may all be outside
  // the windows: named by its newest run, or by the key.
  Group& groupOfKey(const std::string& key) {
    if (keyFlows.count(key) == 0) {
      KJ_IF_MAYBE(latest, history.latestRun(key)) {
        StoredRun names = kj::mv(*latest);
        names.key.task = "";
        names.finishedAtNs = INT64_MIN + 1;  // names a group no run in the windows named
        return groupOf(names);
      }
      const std::string flowPrefix = "flow:";
      std::string flow = key.rfind(flowPrefix, 0) == 0 ? key.substr(flowPrefix.size()) : "";
      StoredRun named{TaskHistoryKey{key, ""}, flow, "", INT64_MIN + 1, ""};
      return groupOf(named);
    }
    return groups[idOf(key, keyFlows[key], "")];
  }

  void addRuns() {
    auto names = costFieldNames();
    auto paths = KJ_MAP(name, names) { return kj::str("$.", name); };
    for (auto& run: history.runsFinishedBetween(kind, windows[PREVIOUS].startNs,
                                                windows[CURRENT].endNs, paths)) {
      auto& group = groupOf(run);
      Window window = windowOf(run.finishedAtNs);
      if (kind == RunKind::FLOW_RUN_FOOTPRINTS) ++footprints[run.key.key][window];
      KJ_IF_MAYBE(cost, runCost(run.values, names)) {
        auto& sums = group.byCurrency[cost->currency][window];
        ++sums.runs;
        sums.used += cost->used;
        sums.allocated += cost->allocated;
        sums.waste += cost->waste;
        if (run.finishedAtNs >= group.newestPricedNs) {
          group.newestPricedNs = run.finishedAtNs;
          group.newestCurrency = cost->currency;
        }
      } else {
        ++group.unpriced[window];
      }
    }
  }

  // A task whose stored runs are as many as the history keeps has lost the
  // ones before its oldest: a window that starts before that misses runs.
  void markRetention() {
    uint32_t keeps = history.runsKept();
    for (auto& kept: history.keptRuns(kind)) {
      if (kept.count < keeps || kept.oldestNs > windows[CURRENT].endNs) continue;
      if (kind == RunKind::FLOW_RUN_FOOTPRINTS) footprintsKeptSince[kept.key.key] = kept.oldestNs;
      for (Window window: {CURRENT, PREVIOUS}) {
        if (kept.oldestNs <= windows[window].startNs) continue;
        auto& group = grouping == Grouping::TASK ? groups[idOf(kept.key.key, "", kept.key.task)]
                                                 : groupOfKey(kept.key.key);
        group.missing[window].push_back(
            kj::str("the history keeps the newest ", keeps, " runs of each task; its runs "
                    "before ", utcMinute(kept.oldestNs), " are gone").cStr());
      }
    }
  }

  // Every finished flow run is in flow_runs; those without a footprint row
  // (no policy applied, or it was measured in part) are missing from the
  // sums. Flow runs from before a key's retention cut are said already.
  void markFootprintless() {
    std::map<std::string, std::array<uint32_t, 2>> flowRuns;
    for (auto& [key, finishedAtNs]: history.flowRunsFinishedBetween(windows[PREVIOUS].startNs,
                                                                    windows[CURRENT].endNs)) {
      auto cut = footprintsKeptSince.find(key);
      if (cut != footprintsKeptSince.end() && finishedAtNs < cut->second) continue;
      ++flowRuns[key][windowOf(finishedAtNs)];
    }
    for (auto& [key, counts]: flowRuns) {
      auto& found = footprints[key];
      for (Window window: {CURRENT, PREVIOUS}) {
        if (counts[window] <= found[window]) continue;
        auto& group = groupOfKey(key);
        group.flowRuns[window] += counts[window];
        group.footprintless[window] += counts[window] - found[window];
      }
    }
    for (auto& [id, group]: groups) {
      for (Window window: {CURRENT, PREVIOUS}) {
        uint32_t none = group.footprintless[window];
        if (none == 0) continue;
        group.missing[window].push_back(kj::str(none, " of ", group.flowRuns[window],
                                                " flow runs ", none == 1 ? "has" : "have",
                                                " no footprint").cStr());
      }
    }
  }

  // The stretches of each window no sidecar watched (History::watchedUntil),
  // said when longer than UNWATCHED_SAID_ABOVE_NS: runs that finished then
  // are not in the history, so every row of that window is partial.
  void markUnwatched() {
    for (Window window: {CURRENT, PREVIOUS}) {
      auto bounds = windows[window];
      int64_t unseen = 0, from = bounds.startNs, longestFrom = 0, longestTo = 0;
      auto gap = [&](int64_t gapFrom, int64_t gapTo) {
        if (gapTo - gapFrom <= UNWATCHED_SAID_ABOVE_NS) return;
        unseen += gapTo - gapFrom;
        if (gapTo - gapFrom > longestTo - longestFrom) longestFrom = gapFrom, longestTo = gapTo;
      };
      for (auto [since, until]: history.watchedBetween(bounds.startNs, bounds.endNs)) {
        if (since > from) gap(from, since);
        from = std::max(from, until);
      }
      if (from < bounds.endNs) gap(from, bounds.endNs);
      if (unseen == 0) continue;
      unwatched[window] = kj::str(
          "no sidecar watched ", lengthText(unseen).c_str(), " of it (the longest stretch from ",
          utcMinute(longestFrom), " to ", utcMinute(longestTo),
          "): runs that finished then are not in the history").cStr();
    }
  }

  struct Row {
    const Group* group;
    std::string currency;
    Sums current, previous;
  };

  void fillRows(proto::CostReport::Builder out) {
    std::vector<Row> rows;
    for (auto& [id, group]: groups) {
      for (auto& [currency, sums]: group.byCurrency) {
        rows.push_back(Row{&group, currency, sums[CURRENT], sums[PREVIOUS]});
      }
      if (group.byCurrency.empty()) rows.push_back(Row{&group, "", {}, {}});
    }
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      return a.current.used != b.current.used ? a.current.used > b.current.used
                                              : a.previous.used > b.previous.used;
    });
    // An answer is one RPC message (at most 512 KiB), and a row's size
    // depends on its names and on why it is partial: rows are built aside
    // first, and listed while they fit.
    capnp::MallocMessageBuilder aside;
    std::vector<capnp::Orphan<proto::CostRow>> listed;
    uint64_t words = 0;
    for (auto& row: rows) {
      auto built = aside.getOrphanage().newOrphan<proto::CostRow>();
      fillRow(row, built.get());
      uint64_t size = built.getReader().totalSize().wordCount;
      if (listed.size() == COST_ROWS_MAX || words + size > COST_ROWS_WORDS_MAX) break;
      words += size;
      listed.push_back(kj::mv(built));
    }
    out.setRowsNotListed(rows.size() - listed.size());
    auto list = out.initRows(listed.size());
    for (size_t i = 0; i < listed.size(); ++i) list.setWithCaveats(i, listed[i].getReader());
  }

  void fillRow(const Row& row, proto::CostRow::Builder out) const {
    auto& group = *row.group;
    // Why runs of each window are missing: its own causes, then the window's.
    std::array<std::vector<std::string>, 2> missingOf = group.missing;
    for (Window window: {CURRENT, PREVIOUS}) {
      if (!unwatched[window].empty()) missingOf[window].push_back(unwatched[window]);
    }
    out.setDeployment(group.deployment);
    out.setFlow(group.flow);
    out.setKey(group.key);
    out.setTask(group.task);
    out.setCurrency(row.currency);
    out.setRuns(row.current.runs);
    out.setUsed(row.current.used);
    out.setAllocated(row.current.allocated);
    out.setWaste(row.current.waste);
    out.setPreviousRuns(row.previous.runs);
    out.setPreviousUsed(row.previous.used);
    auto& missing = missingOf[CURRENT];
    out.setPartial(!missing.empty());
    auto why = out.initPartialWhy(missing.size());
    for (size_t i = 0; i < missing.size(); ++i) why.set(i, missing[i]);
    // Unpriced runs have no currency: the row of the group's newest priced run counts them.
    bool countsUnpriced = row.currency == group.newestCurrency;
    out.setUnpricedRuns(countsUnpriced ? group.unpriced[CURRENT] : 0);

    // The previous window's sum is not its cost when runs of it are missing
    // or unpriced, and a trend needs both windows whole.
    std::vector<std::string> previousNotWhole;
    if (!missingOf[PREVIOUS].empty()) {
      previousNotWhole.push_back("the previous window is partial: " +
                                 joined(missingOf[PREVIOUS]));
    }
    if (group.unpriced[PREVIOUS] > 0) {
      previousNotWhole.push_back(
          kj::str(runsText(group.unpriced[PREVIOUS]), " of the previous window ",
                  group.unpriced[PREVIOUS] == 1 ? "has" : "have", " no cost").cStr());
    }
    std::vector<std::string> trendUnknown = previousNotWhole;
    if (!missing.empty()) trendUnknown.push_back("the window is partial");
    if (group.unpriced[CURRENT] > 0) {
      trendUnknown.push_back(kj::str(runsText(group.unpriced[CURRENT]), " of the window ",
                                     group.unpriced[CURRENT] == 1 ? "has" : "have", " no cost")
                                 .cStr());
    }
    if (trendUnknown.empty() && row.previous.used <= 0) {
      trendUnknown.push_back("the previous window has no cost to compare with");
    }
    if (trendUnknown.empty()) {
      out.setTrend(row.current.used / row.previous.used - 1);
      return;
    }
    auto unknown = out.initUnknown(previousNotWhole.empty() ? 1 : 2);
    unknown.set(0, "trend");
    if (!previousNotWhole.empty()) unknown.set(1, "previous_used");
    auto unknownWhy = out.initUnknownWhy(trendUnknown.size());
    for (size_t i = 0; i < trendUnknown.size(); ++i) unknownWhy.set(i, trendUnknown[i]);
  }

  HistoryReader& history;
  Grouping grouping;
  RunKind kind;
  std::array<Bounds, 2> windows;
  std::map<std::pair<std::string, std::string>, Group> groups;
  std::map<std::string, std::string> keyFlows;  // a key's flow, from its newest run seen
  std::map<std::string, std::array<uint32_t, 2>> footprints;  // per key and window
  std::map<std::string, int64_t> footprintsKeptSince;  // keys whose older footprints are gone
  std::array<std::string, 2> unwatched;  // per window, empty when watched throughout
};

}  // namespace

kj::Promise<kj::Own<capnp::MessageBuilder>> CostRollup::costs(kj::StringPtr by, uint64_t sinceNs,
                                                              int64_t nowNs) {
  Grouping grouping = groupingNamed(by);
  if (sinceNs == 0) sinceNs = DEFAULT_SINCE_NS;
  if (sinceNs > COSTS_SINCE_NS_MAX) refuse(kj::str("costs: since is at most 100 years"));
  if (running->now) refuse(kj::str("costs: another rollup is running; ask again once it has answered"));
  if (nowNs == 0) nowNs = realtimeNs();
  auto answer = kj::newPromiseAndCrossThreadFulfiller<kj::Own<capnp::MessageBuilder>>();
  auto thread = kj::heap<kj::Thread>([fulfiller = kj::mv(answer.fulfiller), path = historyPath,
                                      keep = keepRuns, grouping, sinceNs, nowNs]() mutable {
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      auto message = kj::heap<capnp::MallocMessageBuilder>();
      HistoryReader history(path, keep);
      Rollup(history, grouping, sinceNs, nowNs).fill(message->initRoot<proto::CostReport>());
      fulfiller->fulfill(kj::Own<capnp::MessageBuilder>(kj::mv(message)));
    })) {
      fulfiller->reject(kj::mv(*e));
    }
  });
  running->now = true;
  // The thread ends right after it answers; dropped unanswered (the caller
  // went away), the rollup is waited for.
  return answer.promise.attach(
      kj::mv(thread), kj::defer([running = kj::addRef(*running)]() mutable { running->now = false; }));
}

}  // namespace tracer
