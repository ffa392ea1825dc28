#include "runs/advisor.h"

#include <capnp/dynamic.h>
#include <kj/debug.h>

#include <algorithm>
#include <optional>

#include "contract_json.h"
#include "policy/detectors.h"
#include "policy/matcher.h"
#include "policy/placement.h"
#include "policy/policy_loader.h"
#include "policy/recommendation.h"
#include "policy/run_cost.h"
#include "report/task_row.h"

#include "ops/wall_clock.h"

namespace tracer {

namespace {

// The defaults, looking at no more runs than the history keeps (--history-runs).
std::shared_ptr<const policy::PolicySet> builtInDefaults(uint32_t runsKept) {
  auto set = std::make_shared<policy::PolicySet>();
  policy::Policy fallback;
  fallback.name = "built-in-default";
  fallback.description = "No --policies directory: the defaults of policies/default.yaml.";
  fallback.origin = policy::Origin{"(built in)", 0};
  fallback.history.runs = std::min(fallback.history.runs, runsKept);
  fallback.history.minRuns = std::min(fallback.history.minRuns, fallback.history.runs);
  set->policies.push_back(std::move(fallback));
  return set;
}

std::string joined(const std::vector<policy::Diagnostic>& errors) {
  std::string text;
  for (auto& e: errors) text += (text.empty() ? "" : "\n") + e.text();
  return text;
}

// Whose history a run belongs to: its deployment, or its flow without one.
RunOwner ownerOf(const TaskPlace& place) {
  return RunOwner{place.flow.c_str(), place.deploymentId.c_str(), place.deployment.c_str()};
}

TaskHistoryKey taskHistoryKey(const TaskPlace& place) {
  return TaskHistoryKey{historyKey(ownerOf(place)),
                        place.taskKey.empty() ? place.task : place.taskKey};
}

RunContext runContextOf(const TaskPlace& place) {
  return RunContext{place.flow, place.deployment, place.workPool, place.workPoolType, place.tags,
                    realtimeNs()};
}

// Only a flow run's footprint gets job variables: a deployment's limits hold
// all its tasks at once, and one task's figures set as limits can OOM the run.
void fillRecommendation(proto::Recommendation::Builder out, const policy::Recommendation& r,
                        const std::string& workPoolType, const std::string& deployment,
                        policy::Scope scope) {
  out.setReady(r.ready);
  out.setRuns(r.runs);
  out.setMinRuns(r.minRuns);
  out.setConfidence(r.confidence);
  out.setSpanHours(r.spanHours);
  out.setCpuCores(r.cpuCores);
  out.setMemoryBytes(r.memoryBytes);
  out.setOomSeen(r.oomSeen);
  out.setWastedCostPerRun(r.wastedCostPerRun);
  out.setRunsPerMonth(r.runsPerMonth);
  out.setRecentUsedCost(r.recentUsedCost);
  out.setRecentAllocatedCost(r.recentAllocatedCost);
  if (r.ready && scope == policy::Scope::FLOW_RUN) {
    out.setJobVariables(policy::jobVariablesSnippet(
        workPoolType.empty() ? "process" : workPoolType, deployment, r));
  }
}

// The run's cost at the prices that apply to its work pool.
void price(proto::TaskReport::Builder report, const policy::Cost& cost,
           const policy::Observation& run) {
  auto& prices = cost.pricesFor(run.workPool);
  auto figures = policy::runCost(prices, run);
  auto out = report.getCost();
  out.setAllocated(figures.allocated);
  out.setUsed(figures.used);
  out.setWaste(figures.waste);
  out.setCpuCoreHour(prices.cpuCoreHour);
  out.setMemoryGibHour(prices.memoryGibHour);
  out.setCurrency(cost.currency);
  out.setPriceSource(cost.source);
}

// The cost figures are null in the report, with the reason: never a 0 that
// reads as free.
void costUnknown(proto::TaskReport::Builder report, kj::StringPtr why) {
  static constexpr kj::StringPtr FIELDS[] = {"cost.allocated"_kj, "cost.used"_kj,
                                             "cost.waste"_kj};
  auto unknown = report.asReader().getUnknown();
  auto whys = report.asReader().getUnknownWhy();
  kj::Vector<kj::String> fields, reasons;
  for (auto f: unknown) fields.add(kj::str(f));
  for (auto f: FIELDS) fields.add(kj::str(f));
  for (auto w: whys) reasons.add(kj::str(w));
  reasons.add(kj::str("cost: ", why));
  auto outFields = report.initUnknown(fields.size());
  for (auto i: kj::indices(fields)) outFields.set(i, fields[i]);
  auto outWhy = report.initUnknownWhy(reasons.size());
  for (auto i: kj::indices(reasons)) outWhy.set(i, reasons[i]);
}

// What bounds a task run (policy/placement.h), from what of it was measured;
// a thread task of a shared process by its own memory, not its process's.
std::string profileOf(const policy::PlacementRules& rules, policy::Observation run,
                      proto::TaskReport::Reader report) {
  auto unknown = report.getUnknown();
  policy::Unmeasured unmeasured;
  unmeasured.sleepCauses = listsUnknown(unknown, "sched.sleep_by_cause");
  unmeasured.sleep = listsUnknown(unknown, "sched.sleep_ns");
  unmeasured.blockedIo = listsUnknown(unknown, "sched.blocked_io_ns");
  if (run.sharedProcess) {
    unmeasured.ownMemory = listsUnknown(unknown, "memory.own_peak_rss_bytes");
    if (!unmeasured.ownMemory) run.peakRssBytes = report.getMemory().getOwnPeakRssBytes();
  }
  return policy::profileOf(rules, run, unmeasured);
}

// Whether a flow run's tasks belong on different work pools, from its
// footprint `run` and its task runs as advised (each with its profile).
std::optional<policy::Separation> separationOf(const policy::Policy& applied,
                                               const RunContext& context,
                                               const policy::Observation& run,
                                               const policy::Recommendation& recommendation,
                                               kj::ArrayPtr<const proto::TaskReport::Reader> tasks) {
  std::vector<policy::PlacedTask> placed;
  placed.reserve(tasks.size());
  for (auto task: tasks) {
    capnp::MallocMessageBuilder message(256);
    auto row = message.initRoot<proto::TaskRow>();
    fillTaskRow(task, row);
    placed.push_back(policy::PlacedTask{observationOf(context, row.asReader()),
                                        task.getStartTimeNs(), task.getProfile()});
  }
  return policy::separateTasks(applied, run, recommendation,
                               kj::arrayPtr(placed.data(), placed.size()));
}

void fillPlacement(proto::TaskReport::Placement::Builder out, const policy::Separation& s) {
  out.setNeededGibPerCore(s.shape.neededGibPerCore);
  out.setAllocatedGibPerCore(s.shape.allocatedGibPerCore);
  auto groups = out.initGroups(s.groups.size());
  for (size_t i = 0; i < s.groups.size(); ++i) {
    auto& group = s.groups[i];
    groups[i].setKind(group.kind);
    auto names = groups[i].initTasks(group.tasks.size());
    auto profiles = groups[i].initProfiles(group.profiles.size());
    for (size_t j = 0; j < group.tasks.size(); ++j) names.set(j, group.tasks[j]);
    for (size_t j = 0; j < group.profiles.size(); ++j) profiles.set(j, group.profiles[j]);
    groups[i].setCpuCores(group.cpuCores);
    groups[i].setMemoryBytes(group.memoryBytes);
    groups[i].setJobVariables(group.jobVariables);
  }
}

}  // namespace

void copyAdvice(proto::TaskReport::Reader advised, proto::TaskReport::Builder to) {
  to.setPolicy(advised.getPolicy());
  if (advised.hasFindings()) to.setFindings(advised.getFindings());
  if (advised.hasRecommendation()) to.setRecommendation(advised.getRecommendation());
  // A group has no setter of its own: field by field, whatever fields it has.
  auto cost = capnp::toDynamic(advised).get("cost").as<capnp::DynamicStruct>();
  auto toCost = capnp::toDynamic(to).get("cost").as<capnp::DynamicStruct>();
  for (auto field: cost.getSchema().getFields()) toCost.set(field, cost.get(field));
  // The cost may be unknown, and why.
  to.setUnknown(advised.getUnknown());
  to.setUnknownWhy(advised.getUnknownWhy());
  to.setProfile(advised.getProfile());
}

Advisor::Advisor(Log& log, std::string policyDirectory, History& history,
                 kj::Maybe<HistorySeeder&> seeder)
    : log(log), directory(std::move(policyDirectory)), history(history), seeder(seeder) {
  flush();  // the history has it at once that a sidecar watches from now on
  if (directory.empty()) {
    policies = builtInDefaults(history.runsKept());
    matcher = std::make_unique<policy::Matcher>(*policies);
    log.info("no --policies directory: using the built-in default policy");
    return;
  }
  auto loaded = policy::loadPolicyDirectory(directory, history.runsKept());
  if (!loaded.ok()) {
    startupProblem = joined(loaded.errors);
    policies = std::make_shared<const policy::PolicySet>();
    matcher = std::make_unique<policy::Matcher>(*policies);
    return;
  }
  policies = std::make_shared<const policy::PolicySet>(std::move(loaded.set));
  matcher = std::make_unique<policy::Matcher>(*policies);
  log.info(kj::str("loaded ", policies->policies.size(), " policies from ", directory.c_str()));
}

std::vector<std::string> Advisor::reload() {
  if (directory.empty()) return {"no --policies directory to reload"};
  auto loaded = policy::loadPolicyDirectory(directory, history.runsKept());
  std::vector<std::string> errors;
  for (auto& e: loaded.errors) errors.push_back(e.text());
  if (!loaded.ok()) {
    ++reloads.refused;
    reloadError = joined(loaded.errors);
    log.error(kj::str("policy reload refused, keeping the previous ", policies->policies.size(),
                      " policies:\n", reloadError.c_str()));
    return errors;
  }
  policies = std::make_shared<const policy::PolicySet>(std::move(loaded.set));
  matcher = std::make_unique<policy::Matcher>(*policies);
  reloadError.clear();
  ++reloads.applied;
  log.info(kj::str("reloaded ", policies->policies.size(), " policies from ", directory.c_str()));
  return errors;
}

uint64_t Advisor::liveArtifactEvery(const TaskPlace& place) {
  policy::Subject subject{place.flow, place.task, place.deployment, place.workPool, place.tags};
  const policy::Policy* applied = matcher->match(subject);
  return applied == nullptr ? 0 : applied->findings.liveArtifactNs;
}

kj::String Advisor::advise(const TaskPlace& place, proto::TaskReport::Builder report,
                           policy::Scope scope,
                           kj::ArrayPtr<const proto::TaskReport::Reader> flowTasks) {
  policy::Subject subject{place.flow, place.task, place.deployment, place.workPool, place.tags};
  const policy::Policy* applied = matcher->match(subject);
  if (applied == nullptr) {  // no catch-all in the set: nothing to say
    costUnknown(report, "no policy applies, so no prices do");
    return nullptr;
  }
  report.setPolicy(applied->name);

  auto key = taskHistoryKey(place);
  // The run's record, as its flow run's table artifact and the history keep it.
  capnp::MallocMessageBuilder message(256);
  auto row = message.initRoot<proto::TaskRow>();
  fillTaskRow(report.asReader(), row);
  auto context = runContextOf(place);
  auto run = observationOf(context, row.asReader());
  // A run measured only in part (its CPU or memory peak unknown) is neither
  // judged nor remembered: the recommendation comes from the runs before it.
  auto unknown = report.asReader().getUnknown();
  bool measured =
      !listsUnknown(unknown, "cpu.user_ns") && !listsUnknown(unknown, "memory.peak_rss_bytes");
  std::vector<policy::Observation> runs;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions(
                     [&]() { runs = history.recent(key, applied->history.runs); })) {
    log.error(kj::str("history unavailable, advising from this run only: ", e->getDescription()));
  }
  if (measured) {
    price(report, applied->cost, run);
    fillRowCost(report.asReader(), row);
  } else {
    costUnknown(report, "what the run used is not known (its CPU time or its memory peak)");
  }
  std::vector<policy::Finding> findings;
  if (measured) {
    findings = policy::detect(*applied, run, kj::arrayPtr(runs.data(), runs.size()), scope);
    runs.push_back(run);
  }
  auto recommendation = policy::recommend(*applied, kj::arrayPtr(runs.data(), runs.size()));
  if (measured && scope == policy::Scope::TASK_RUN) {
    auto profile = profileOf(applied->placement, run, report.asReader());
    report.setProfile(profile);
    row.setProfile(profile);
  }
  std::optional<policy::Separation> separation;
  if (measured && scope == policy::Scope::FLOW_RUN && flowTasks.size() > 0) {
    separation = separationOf(*applied, context, run, recommendation, flowTasks);
    if (separation) findings.push_back(separation->finding);
  }

  auto out = report.initFindings(findings.size());
  bool ownArtifact = false;
  for (auto& finding: findings) {
    ownArtifact = ownArtifact || policy::atLeast(finding.severity, applied->findings.taskArtifact);
  }
  report.setTaskArtifact(ownArtifact);
  for (size_t i = 0; i < findings.size(); ++i) {
    out[i].setKind(findings[i].kind);
    out[i].setSeverity(findings[i].severity);
    out[i].setSummary(findings[i].summary);
    out[i].setPolicy(findings[i].policy);
    auto evidence = out[i].initEvidence(findings[i].evidence.size());
    for (size_t j = 0; j < findings[i].evidence.size(); ++j) {
      evidence[j].setName(findings[i].evidence[j].first);
      evidence[j].setValue(findings[i].evidence[j].second);
    }
  }
  fillRecommendation(report.initRecommendation(), recommendation, place.workPoolType,
                     place.deployment, scope);
  if (separation) fillPlacement(report.getPlacement(), *separation);
  if (!measured) return nullptr;
  row.setTopFinding(topFinding(report.asReader()));  // found after the row was made
  auto json = toContractJson(row.asReader());
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    history.recordTask(key, context, run, json);
  })) {
    log.error(kj::str("cannot record the run in the history: ", e->getDescription()));
  }
  return json;
}

void Advisor::flowOpened(const TaskPlace& place) {
  auto owner = ownerOf(place);
  if (place.deploymentId.size() > 0) {
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      auto key = historyKey(owner);
      size_t moved = history.adoptVersion0Runs(place.flow, place.deployment, key);
      if (moved > 0) {
        log.info(kj::str("history of ", displayName(owner), ": ", moved, " runs kept under the ",
                         "deployment name by an earlier version now under ", key.c_str()));
      }
    })) {
      log.error(kj::str("cannot move the earlier history of ", displayName(owner), ": ",
                        e->getDescription()));
    }
  }
  KJ_IF_MAYBE(s, seeder) { s->seedIfUnknown(owner); }
}

void Advisor::flowFinished(const TaskPlace& place, const std::string& flowRunId, uint64_t wallNs,
                           const std::string& state) {
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    history.recordFlow(historyKey(ownerOf(place)), flowRunId, realtimeNs(), wallNs, state);
  })) {
    log.error(kj::str("cannot record the flow run: ", e->getDescription()));
  }
}

void Advisor::flush() {
  bool wasFailing = history.failing();
  size_t held = history.runsHeld();
  history.watchedUntil(realtimeNs());
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { history.flush(); })) {
    if (!wasFailing) {
      log.error(kj::str("cannot write the history (", e->getDescription(), "); holding its runs "
                        "in memory, at most ", History::HELD_RUNS_MAX, ", and retrying every "
                        "second"));
    }
    return;
  }
  if (wasFailing) log.info(kj::str("history written again, with the ", held, " runs it held"));
}

void Advisor::fillStatus(proto::SidecarStatus::Builder status) const {
  status.setPolicies(kj::str(policies->policies.size(), " from ",
                             directory.empty() ? "(built in)" : directory.c_str()));
  status.setPolicyReloadError(reloadError);
}

void Advisor::recommendations(const std::string& flowPattern, capnp::Orphanage orphanage,
                              capnp::Orphan<capnp::List<proto::TaskRecommendation>>& out) {
  RE2 flowFilter(flowPattern.empty() ? ".*" : flowPattern);
  std::vector<std::tuple<TaskHistoryKey, const policy::Policy*, policy::Recommendation,
                         policy::Observation>> rows;
  for (auto& key: history.tasks()) {
    auto latest = history.recent(key, 1);
    if (latest.empty() || !RE2::FullMatch(latest.back().flow, flowFilter)) continue;
    auto& last = latest.back();
    policy::Subject subject{last.flow, last.task, last.deployment, last.workPool, last.tags};
    const policy::Policy* applied = matcher->match(subject);
    if (applied == nullptr) continue;
    auto runs = history.recent(key, applied->history.runs);
    rows.emplace_back(key, applied, policy::recommend(*applied, kj::arrayPtr(runs.data(), runs.size())),
                      last);
  }
  out = orphanage.newOrphan<capnp::List<proto::TaskRecommendation>>(rows.size());
  auto list = out.get();
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& [key, applied, recommendation, last] = rows[i];
    list[i].setKey(key.key);
    list[i].setFlow(last.flow);
    list[i].setDeployment(last.deployment);
    list[i].setTask(key.task);
    list[i].setPolicy(applied->name);
    fillRecommendation(list[i].initRecommendation(), recommendation, last.workPoolType,
                       last.deployment,
                       key.task == policy::FLOW_RUN_TASK ? policy::Scope::FLOW_RUN
                                                             : policy::Scope::TASK_RUN);
  }
}

void Advisor::renderMetrics(PrometheusText& out) {
  out.family("tracer_policy_reloads_total", "counter", "Policy reloads, by result.");
  out.sample("tracer_policy_reloads_total", {{"result", "applied"}}, reloads.applied);
  out.sample("tracer_policy_reloads_total", {{"result", "refused"}}, reloads.refused);
  out.single("tracer_policy_reload_failed", "gauge",
             "1 when the last policy reload was refused (the previous set is in use).",
             reloadError.empty() ? 0 : 1);
}

}  // namespace tracer
