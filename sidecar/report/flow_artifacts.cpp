#include "report/flow_artifacts.h"

#include <capnp/message.h>
#include <capnp/schema.h>
#include <kj/debug.h>

#include <algorithm>
#include <cstdio>

#include "contract_json.h"
#include "policy/placement.h"
#include "policy/run_cost.h"
#include "report/markdown_text.h"
#include "report/run_keys.h"
#include "report/task_row.h"
#include "report/time_split.h"

namespace tracer {

namespace {

constexpr uint64_t NS_PER_S = 1000000000;

// The timeline's mermaid configuration: colours for the dark panel Prefect's
// UI draws charts on, whatever the page's theme (done tasks green, others
// red), labels at 14 px, drawn 700 px wide (about the width of the markdown
// column on Prefect's artifact page, so it is not scaled down).
constexpr const char* GANTT_INIT =
    "%%{init: {\"theme\": \"base\", \"themeVariables\": {\"fontSize\": \"14px\", "
    "\"textColor\": \"#e5e7eb\", \"sectionBkgColor\": \"#f3f4f6\", "
    "\"altSectionBkgColor\": \"#ffffff\", \"gridColor\": \"#6b7280\", "
    "\"taskTextColor\": \"#ffffff\", \"taskTextOutsideColor\": \"#e5e7eb\", "
    "\"taskTextDarkColor\": \"#ffffff\", \"doneTaskBkgColor\": \"#15803d\", "
    "\"doneTaskBorderColor\": \"#166534\", \"critBkgColor\": \"#b91c1c\", "
    "\"critBorderColor\": \"#991b1b\"}, \"gantt\": {\"useWidth\": 700, \"fontSize\": 14, "
    "\"sectionFontSize\": 14, \"barHeight\": 24, \"barGap\": 6}}}%%";

kj::String fixed(double value, int decimals) {
  char text[64];
  snprintf(text, sizeof(text), "%.*f", decimals, value);
  return kj::str(text);
}

kj::String inMib(uint64_t bytes) { return fixed(bytes / 1048576.0, 0); }

kj::String mib(uint64_t bytes) { return kj::str(inMib(bytes), " MiB"); }

kj::String seconds(uint64_t ns) { return kj::str(inSeconds(ns), " s"); }

// How long runs span, for people: two runs a few seconds apart are not "0.00 h".
kj::String spanText(double hours) {
  if (hours < 1.0 / 60) return kj::str(fixed(hours * 3600, 1), " s");
  if (hours < 2) return kj::str(fixed(hours * 60, 1), " min");
  return kj::str(fixed(hours, 2), " h");
}

// Mermaid task names: no characters that end a gantt line.
kj::String ganttLabel(kj::StringPtr text) {
  kj::Vector<char> out(text.size() + 1);
  for (char c: text) out.add(c == ':' || c == '#' || c == ';' || c == '\n' ? ' ' : c);
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

// A field the report lists as unknown: null in the table artifact, "?" in the
// markdown, never a zero that reads as measured.
class Known {
 public:
  explicit Known(proto::TaskReport::Reader task): unknown(task.getUnknown()) {}
  kj::String text(kj::StringPtr path, kj::String value) const {
    return known(path) ? kj::mv(value) : kj::str("?");
  }
  bool any() const { return unknown.size() > 0; }

 private:
  bool known(kj::StringPtr path) const { return !listsUnknown(unknown, path); }
  capnp::List<capnp::Text>::Reader unknown;
};

// Where a finding of the flow run's footprint is, in the findings list.
constexpr kj::StringPtr FLOW_RUN_LABEL = "the flow run (its processes together)"_kj;

// One finding as a markdown list item; `where` is markdown already.
kj::String findingLine(kj::StringPtr where, proto::Finding::Reader f) {
  kj::Vector<kj::String> evidence;
  for (auto e: f.getEvidence()) evidence.add(kj::str(e.getName(), " ", e.getValue()));
  return kj::str("- **", f.getSeverity(), "** `", f.getKind(), "` in ", where, ": ",
                 f.getSummary(), " (", kj::strArray(evidence, ", "), "; policy `", f.getPolicy(),
                 "`)");
}

// The deployment's advice: from the flow run's footprint, what its processes
// used together, since its allocation holds all its tasks at once.
kj::String recommendationSection(proto::TaskReport::Reader footprint) {
  auto r = footprint.getRecommendation();
  auto alloc = footprint.getAllocation();
  auto section = kj::str("\n### Recommendation\n\n");
  if (listsUnknown(footprint.getUnknown(), "memory.peak_rss_bytes")) {
    auto why = footprint.getUnknownWhy();
    return kj::str(section, "Not known: what the flow run's processes used together could not be "
                   "measured (", why.size() > 0 ? why[0] : "no reason given", ").");
  }
  auto cpu = footprint.getCpu();
  auto measured = kj::str("This run's processes together held at most **",
                          mib(footprint.getMemory().getPeakRssBytes()), "** and used **",
                          fixed(cpu.getP95Cores(), 2), " cores** (p95 over 1 s windows; max ",
                          fixed(cpu.getMaxCores(), 2), ").");
  if (!r.getReady()) {
    return kj::str(section, measured, " A recommendation for the deployment needs ",
                   r.getMinRuns(), " such runs (the policy's history.min_runs); it has ",
                   r.getRuns(), ".");
  }
  return kj::str(section, "The flow run's processes together need about **",
                 fixed(r.getCpuCores(), 2), " cores** and **", mib(r.getMemoryBytes()),
                 "** (they had ", fixed(alloc.getCpuCores(), 2), " cores and ",
                 mib(alloc.getMemoryBytes()), ", ", alloc.getSource(), "): from ", r.getRuns(),
                 " runs over ", spanText(r.getSpanHours()), ", confidence ",
                 fixed(r.getConfidence() * 100, 0), "%", r.getOomSeen() ? ", after an OOM" : "",
                 ". ", measured, " Set in `prefect.yaml`:\n\n```yaml\n", r.getJobVariables(),
                 "```\n\nThe tasks' own figures (the table below) are each task's alone: its "
                 "tasks run side by side within these limits.");
}

kj::String money(double amount, kj::StringPtr currency) {
  return kj::str(policy::formatMoney(amount, currency.cStr()));
}

// The first reason the report gives for its cost being unknown.
kj::StringPtr costUnknownWhy(proto::TaskReport::Reader report) {
  for (auto why: report.getUnknownWhy()) {
    if (why.startsWith("cost: ")) return why.slice(6);
  }
  auto whys = report.getUnknownWhy();
  return whys.size() > 0 ? whys[0] : "no reason given"_kj;
}

// What the run cost and wasted, from its footprint (its processes together:
// tasks share the allocation, so their own costs overlap); the last runs';
// and what the recommendation would save, per run and per month at the
// observed run rate.
kj::String costSection(proto::TaskReport::Reader footprint) {
  auto section = kj::str("\n### Cost\n\n");
  if (listsUnknown(footprint.getUnknown(), "cost.used")) {
    return kj::str(section, "Not known: ", costUnknownWhy(footprint), ".");
  }
  auto cost = footprint.getCost();
  auto currency = cost.getCurrency();
  auto alloc = footprint.getAllocation();
  double share = cost.getAllocated() > 0 ? cost.getWaste() / cost.getAllocated() * 100 : 0;
  kj::Vector<kj::String> lines;
  lines.add(kj::str("This run had **", money(cost.getAllocated(), currency), "** allocated (",
                    fixed(alloc.getCpuCores(), 2), " cores and ", mib(alloc.getMemoryBytes()),
                    " for ", seconds(footprint.getWallNs()), ") and used **",
                    money(cost.getUsed(), currency), "** of it: **",
                    money(cost.getWaste(), currency), "** (", fixed(share, 0),
                    "%) was not used."));
  auto r = footprint.getRecommendation();
  if (r.getRuns() > 1) {
    lines.add(kj::str("Its last ", r.getRuns(), " measured runs used ",
                      money(r.getRecentUsedCost(), currency), " of ",
                      money(r.getRecentAllocatedCost(), currency), " allocated (at today's prices)."));
  }
  if (!r.getReady()) {
    lines.add(kj::str("What the recommendation would save is known from ", r.getMinRuns(),
                      " runs; there are ", r.getRuns(), "."));
  } else {
    auto perMonth = r.getRunsPerMonth() > 0
        ? kj::str("**", money(r.getWastedCostPerRun() * r.getRunsPerMonth(), currency),
                  " a month** at the observed rate of ", fixed(r.getRunsPerMonth(), 0),
                  " runs a month (", r.getRuns(), " runs over ", spanText(r.getSpanHours()), ")")
        : kj::str("a month: not known (its runs so far span no time)");
    lines.add(kj::str("The recommendation would save about **",
                      money(r.getWastedCostPerRun(), currency), " a run**; ", perMonth, "."));
  }
  lines.add(kj::str("Prices: ", policy::formatPrice(cost.getCpuCoreHour(), currency.cStr()),
                    " per core-hour and ",
                    policy::formatPrice(cost.getMemoryGibHour(), currency.cStr()), " per GiB-hour (",
                    cost.getPriceSource(), "; policy `", footprint.getPolicy(), "`). CPU is "
                    "priced as used, memory at its peak for the whole run. Each task's cost in the "
                    "table artifact is the run's allocation over the task's own time: tasks side "
                    "by side overlap, so they do not add up to the run's."));
  return kj::str(section, kj::strArray(lines, "\n\n"));
}

kj::String shapeText(double gibPerCore) {
  return kj::str(fixed(gibPerCore, 1), " GiB per core (",
                 policy::instanceFamily(gibPerCore).c_str(), ")");
}

// Which tasks belong on which work pool (the footprint's `separate_tasks`
// finding): each group, what it needs at once and its job variables, and the
// CPU:memory shape the deployment needs against the one it has. Empty when
// the run's tasks are not to be separated.
kj::String placementSection(proto::TaskReport::Reader footprint) {
  auto placement = footprint.getPlacement();
  if (placement.getGroups().size() == 0) return kj::str();
  kj::Vector<kj::String> md;
  // Split by size (heavy and light tasks) or by shape (compute and memory).
  bool bySize = placement.getGroups()[0].getKind() == "heavy";
  md.add(kj::str("\n### Placement\n\n", bySize
      ? "This run's light tasks had its allocation to themselves for much of it "
        "(`separate_tasks` below): run them as a deployment of their own on a small work "
        "pool, and the others on a larger one."
      : "This run's compute-bound and memory-bound tasks need machines of different shapes "
        "(`separate_tasks` below): run them as two deployments, each on a work pool of its "
        "shape."));
  for (auto group: placement.getGroups()) {
    kj::Vector<kj::String> names;
    for (size_t i = 0; i < group.getTasks().size(); ++i) {
      auto profile = i < group.getProfiles().size() ? group.getProfiles()[i] : "";
      names.add(kj::str(markdownName(group.getTasks()[i]), " (", profile, ")"));
    }
    auto kind = group.getKind();
    double shape = policy::gibPerCore(group.getMemoryBytes(), group.getCpuCores());
    auto title = kind == "heavy" ? kj::str("Heavy tasks, a larger work pool")
               : kind == "light" ? kj::str("Light tasks, a small work pool")
               : kj::str(kind == "compute" ? "Compute" : "Memory", "-bound tasks, a work pool of ",
                         shapeText(shape));
    md.add(kj::str("\n**", title, "**: ", kj::strArray(names, ", "), ". At most **",
                   fixed(group.getCpuCores(), 2), " cores** and **", mib(group.getMemoryBytes()),
                   "** at once (with the policy's headroom):\n\n```yaml\n",
                   group.getJobVariables(), "```"));
  }
  auto needed = placement.getNeededGibPerCore();
  auto allocated = placement.getAllocatedGibPerCore();
  md.add(kj::str("\nShape: the deployment needs ",
                 needed > 0 ? shapeText(needed) : kj::str("a shape not known yet (its "
                                                          "recommendation is not ready)"),
                 "; its allocation has ",
                 allocated > 0 ? shapeText(allocated) : kj::str("a shape not known"),
                 ". Compute-optimised instances have about 2 GiB per core, general purpose 4, "
                 "memory-optimised 8."));
  return kj::strArray(md, "\n");
}

// A task's own artifact (TaskReport.taskArtifact): its findings and where
// its time went, on its task run's page.
kj::String taskMarkdown(const FlowRunSummary& flow, proto::TaskReport::Reader t) {
  kj::Vector<kj::String> md;
  md.add(kj::str("## Tracer: task ", markdownName(t.getTaskName()), " (",
                 stateName(t.getState()), ", ", seconds(t.getWallNs()), ") of flow ",
                 markdownName(flow.flowName)));
  md.add(kj::str("\n### Findings\n"));
  for (auto f: t.getFindings()) {
    md.add(findingLine(kj::str("**", markdownName(t.getTaskName()), "**"), f));
  }
  const proto::TaskReport::Reader one[] = {t};
  const bool shown[] = {true};
  md.add(timeSplitSection(one, shown));
  return kj::strArray(md, "\n");
}

// The task's row of the table artifact: its TaskRow as contract JSON.
kj::String rowJson(proto::TaskReport::Reader t) {
  capnp::MallocMessageBuilder message(256);
  auto row = message.initRoot<proto::TaskRow>();
  fillTaskRow(t, row);
  return toContractJson(row.asReader());
}

}  // namespace

kj::Vector<Artifact> renderFlowArtifacts(const FlowRunSummary& flow,
                                         proto::TaskReport::Reader footprint,
                                         kj::ArrayPtr<const proto::TaskReport::Reader> tasks,
                                         kj::ArrayPtr<const kj::StringPtr> madeRows) {
  RunOwner owner{flow.flowName, flow.deploymentId, flow.deploymentName};
  kj::Vector<kj::String> md;
  md.add(kj::str("## Tracer: ", markdownName(flow.flowName), " (", flow.state, ", ",
                 seconds(flow.wallNs), ", ",
                 tasks.size(), " tasks)"));
  // The key carries the names cut short and the id cut shorter: here they are whole.
  if (flow.deploymentId.size() > 0 || flow.deploymentName.size() > 0) {
    auto deployment = flow.deploymentName.size()
                          ? kj::str("**", markdownName(flow.deploymentName), "** ")
                          : kj::str();
    auto id = flow.deploymentId.size() ? kj::str("(`", markdownCode(flow.deploymentId), "`) ")
                                       : kj::str();
    md.add(kj::str("\nDeployment ", deployment, id, "of flow **", markdownName(flow.flowName),
                   "**"));
  }

  kj::Vector<kj::String> policies;
  if (footprint.getPolicy().size()) policies.add(kj::str(footprint.getPolicy()));
  for (auto t: tasks) {
    bool seen = false;
    for (auto& p: policies) seen = seen || p == t.getPolicy();
    if (!seen && t.getPolicy().size()) policies.add(kj::str(t.getPolicy()));
  }
  md.add(recommendationSection(footprint));
  md.add(costSection(footprint));
  auto placement = placementSection(footprint);
  if (placement.size() > 0) md.add(kj::mv(placement));

  // Units in the header and pairs in one column: eleven columns with units in
  // every cell did not fit beside the details panel of Prefect's artifact page.
  md.add(kj::str("\n### Tasks\n\n| task | state | wall (s) | cores avg / p95 | peak memory (MiB) | "
                 "disk read / written (MiB) | net sent / received (MiB) | "
                 "blocked on I/O / sleeping (s) | profile / top finding |\n|---|---|---|---|---|---|---|---|---|"));
  // The markdown shows the MARKDOWN_TASKS_MAX longest task runs, in the order
  // they finished; the table artifact has every one.
  auto shown = kj::heapArray<bool>(tasks.size());
  for (auto& one: shown) one = false;
  {
    kj::Vector<size_t> byWall(tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) byWall.add(i);
    std::stable_sort(byWall.begin(), byWall.end(), [&](size_t a, size_t b) {
      return tasks[a].getWallNs() > tasks[b].getWallNs();
    });
    for (size_t i = 0; i < byWall.size() && i < MARKDOWN_TASKS_MAX; ++i) shown[byWall[i]] = true;
  }
  kj::Vector<kj::String> rows;
  rows.reserve(tasks.size());
  bool anyUnknown = false;
  for (size_t i = 0; i < tasks.size(); ++i) {
    auto t = tasks[i];
    auto cpu = t.getCpu();
    auto io = t.getIo();
    auto net = t.getNet();
    auto sched = t.getSched();
    auto memory = t.getMemory();
    Known k(t);
    if (shown[i]) anyUnknown = anyUnknown || k.any();
    if (shown[i]) md.add(kj::str("| ", markdownName(t.getTaskName()), " | ",
                   stateName(t.getState()), " | ",
                   inSeconds(t.getWallNs()), " | ",
                   k.text("cpu.avg_cores", fixed(cpu.getAvgCores(), 2)), " / ",
                   k.text("cpu.p95_cores", fixed(cpu.getP95Cores(), 2)), " | ",
                   k.text("memory.peak_rss_bytes", inMib(memory.getPeakRssBytes())), " | ",
                   k.text("io.read_bytes", inMib(io.getReadBytes())), " / ",
                   k.text("io.write_bytes", inMib(io.getWriteBytes())), " | ",
                   k.text("net.tx_bytes", inMib(net.getTxBytes())), " / ",
                   k.text("net.rx_bytes", inMib(net.getRxBytes())), " | ",
                   k.text("sched.blocked_io_ns", inSeconds(sched.getBlockedIoNs())), " / ",
                   k.text("sched.sleep_ns", inSeconds(sched.getSleepNs())), " | ",
                   t.getProfile().size() ? t.getProfile() : "-", " / ", topFinding(t), " |"));
    bool made = i < madeRows.size() && madeRows[i] != nullptr;
    rows.add(made ? kj::str(madeRows[i]) : rowJson(t));
  }
  size_t hidden = tasks.size() - std::min(tasks.size(), MARKDOWN_TASKS_MAX);
  if (hidden > 0) {
    md.add(kj::str("\n", hidden, " shorter task runs are not listed here: the table artifact has "
                   "all ", tasks.size(), "."));
  }
  if (flow.tasksNotKept > 0) {
    md.add(kj::str("\n", flow.tasksNotKept, " more task runs of this flow run are in neither "
                   "artifact: the sidecar keeps ", tasks.size(), " per flow run "
                   "(`tracerctl reports` has the recent ones)."));
  }
  if (anyUnknown) {
    md.add(kj::str("\n? = not known for that task: the sidecar's kernel observer did not see it "
                   "(its registration came late, or BPF is not loaded; `tracerctl reports` says "
                   "which)."));
  }

  // Gantt timeline; mermaid's dateFormat x reads milliseconds since the epoch.
  // Colours of its own: Prefect's UI hands mermaid its CSS colours, which the
  // gantt draws dark on dark, with labels a few pixels high.
  // Axis labels as fine as the flow run is short (d3 time formats).
  auto axisFormat = flow.wallNs < 10 * NS_PER_S ? "%S.%L" : flow.wallNs < 3600 * NS_PER_S ? "%M:%S" : "%H:%M";
  md.add(kj::str("\n### Timeline\n\n```mermaid\n", GANTT_INIT,
                 "\ngantt\n  dateFormat x\n  axisFormat ", axisFormat));
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (!shown[i]) continue;
    auto t = tasks[i];
    int64_t start = t.getStartTimeNs() / 1000000;
    int64_t end = start + std::max<int64_t>(1, t.getWallNs() / 1000000);
    md.add(kj::str("  ", ganttLabel(t.getTaskName()), " :",
                   t.getState() == proto::RunState::COMPLETED ? "done, " : "crit, ", start, ", ",
                   end));
  }
  md.add(kj::str("```"));
  md.add(timeSplitSection(tasks, shown));

  md.add(kj::str("\n### Findings\n"));
  size_t findings = 0;
  for (auto f: footprint.getFindings()) {
    ++findings;
    md.add(findingLine(FLOW_RUN_LABEL, f));
  }
  for (auto& t: tasks) {
    for (auto f: t.getFindings()) {
      if (++findings > MARKDOWN_FINDINGS_MAX) continue;
      md.add(findingLine(kj::str("**", markdownName(t.getTaskName()), "**"), f));
    }
  }
  if (findings == 0) md.add(kj::str("No findings."));
  if (findings > MARKDOWN_FINDINGS_MAX) {
    md.add(kj::str("- ... and ", findings - MARKDOWN_FINDINGS_MAX, " more (each task's top "
                   "finding is in the table artifact)"));
  }

  auto policyList = kj::strArray(policies, ", ");
  kj::Vector<Artifact> artifacts;
  auto name = displayName(owner);
  artifacts.add(artifactFor(randomArtifactId(), artifactKey(owner, ArtifactKind::REPORT),
                            "markdown", kj::str("Tracer: resources used by this run of ", name),
                            jsonQuoted(kj::strArray(md, "\n")), flow, policyList));
  // A table artifact's data is a JSON *string* holding the list of rows.
  artifacts.add(artifactFor(randomArtifactId(), artifactKey(owner, ArtifactKind::TABLE), "table",
                            kj::str("Tracer: per-task measurements of ", name,
                                    " (machine-readable)"),
                            jsonQuoted(kj::str("[", kj::strArray(rows, ","), "]")), flow,
                            policyList));
  for (auto t: tasks) {
    // Prefect's task run ids are UUIDs; a task of another tool has none to show it on.
    if (!t.getTaskArtifact() || !isUuid(t.getTaskRunId())) continue;
    artifacts.add(artifactFor(randomArtifactId(), taskArtifactKey(owner, t.getTaskName()),
                              "markdown",
                              kj::str("Tracer: why task ", t.getTaskName(), " of ", name,
                                      " needs a look"),
                              jsonQuoted(taskMarkdown(flow, t)), flow, t.getPolicy(),
                              t.getTaskRunId()));
  }
  return artifacts;
}

}  // namespace tracer
