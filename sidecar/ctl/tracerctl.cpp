// tracerctl: the operator's view of a running tracer-sidecar. It talks to the
// sidecar through libtracer_client, exactly as the Prefect plugin does.

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <kj/main.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "contract_json.h"
#include "endpoint_name.h"
#include "ctl/cost_text.h"
#include "ctl/policy_command.h"
#include "ctl/report_text.h"
#include "ctl/run_command.h"
#include "policy/quantity.h"
#include "report/cost_admin.h"
#include "report/run_keys.h"
#include "tracer.capnp.h"
#include "tracer_client.h"

namespace tracer {

namespace {

constexpr int CONNECT_TIMEOUT_MS = 2000;
constexpr int ANSWER_TIMEOUT_MS = 5000;

// Bad input on a command line: one line naming the option and what it
// expects, exit status 2 (a usage error's), nothing else printed.
[[noreturn]] void usageError(kj::StringPtr command, kj::StringPtr line) {
  fprintf(stderr, "%s: %s\n", command.cStr(), line.cStr());
  fflush(stderr);
  _exit(2);
}

kj::String duration(uint64_t ns) {
  uint64_t s = ns / 1000000000;
  if (s < 60) return kj::str(s, "s");
  if (s < 3600) return kj::str(s / 60, "m ", s % 60, "s");
  return kj::str(s / 3600, "h ", (s % 3600) / 60, "m");
}

}  // namespace

class Tracerctl {
 public:
  explicit Tracerctl(kj::ProcessContext& context): context(context) {}
  ~Tracerctl() { tracer_client_close(client); }

  kj::MainFunc getMain() {
    return kj::MainBuilder(context, "tracerctl " TRACER_VERSION,
                           "Inspects a running tracer-sidecar.")
        .addOptionWithArg({"socket"}, KJ_BIND_METHOD(*this, setSocket), "<path>",
                          "Sidecar socket (default: $TRACER_SOCKET or /run/tracer/tracer.sock).")
        .addSubCommand("status", KJ_BIND_METHOD(*this, statusMain),
                       "Version, uptime, collector, clients, live and finished runs.")
        .addSubCommand("tasks", KJ_BIND_METHOD(*this, tasksMain),
                       "Tasks being observed right now (root only).")
        .addSubCommand("top", KJ_BIND_METHOD(*this, topMain),
                       "Live tasks every second: cores, memory, what each waits on (root only).")
        .addSubCommand("run", KJ_BIND_METHOD(*this, runMain),
                       "Run a command as an observed task and report what it did.")
        .addSubCommand("reports", KJ_BIND_METHOD(*this, reportsMain),
                       "Reports of recently finished tasks (root only).")
        .addSubCommand("recommendations", KJ_BIND_METHOD(*this, recommendationsMain),
                       "Right-sizing recommendations from the history (root only).")
        .addSubCommand("costs", KJ_BIND_METHOD(*this, costsMain),
                       "What runs cost over time, by deployment, flow or task, from the "
                       "history (root only).")
        .addSubCommand("outbox", KJ_BIND_METHOD(*this, outboxMain),
                       "Artifacts kept locally or on their way to Prefect (root only).")
        .addSubCommand("reload", KJ_BIND_METHOD(*this, reloadMain),
                       "Reload the sidecar's policies; a bad set is refused and the current "
                       "one stays (root only).")
        .addSubCommand("policy", KJ_BIND_METHOD(policies, getMain),
                       "Check policy files (for CI) and explain which policy applies.")
        .addSubCommand("call", KJ_BIND_METHOD(*this, callMain),
                       "Call any Admin method of capnp/tracer.capnp by its contract name and "
                       "print its results as JSON (root only).")
        .build();
  }

  kj::MainFunc callMain() {
    return kj::MainBuilder(context, "tracerctl call",
                           "Calls an Admin method (recent_reports, live_tasks, ...) with its "
                           "params as a JSON object, e.g. tracerctl call recent_reports "
                           "'{\"limit\": 5}'; prints its results as JSON.")
        .expectArg("<method>", KJ_BIND_METHOD(*this, setMethod))
        .expectOptionalArg("<params-json>", KJ_BIND_METHOD(*this, setParams))
        .callAfterParsing(KJ_BIND_METHOD(*this, callAdmin))
        .build();
  }
  kj::MainBuilder::Validity setMethod(kj::StringPtr value) {
    method = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity setParams(kj::StringPtr value) {
    params = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity callAdmin() {
    context.exitInfo(askAdmin(method, params));
    return true;
  }

 private:
  kj::MainBuilder::Validity setSocket(kj::StringPtr value) {
    socketPath = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity setJson() {
    json = true;
    return true;
  }

  kj::MainFunc statusMain() {
    return kj::MainBuilder(context, "tracerctl status", "Shows the sidecar's status.")
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "Print JSON (contract field names).")
        .callAfterParsing(KJ_BIND_METHOD(*this, printStatus))
        .build();
  }

  kj::MainFunc tasksMain() {
    return kj::MainBuilder(context, "tracerctl tasks", "Lists live tasks.")
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "Print JSON (contract field names).")
        .callAfterParsing(KJ_BIND_METHOD(*this, printTasks))
        .build();
  }

  kj::MainFunc topMain() {
    return kj::MainBuilder(context, "tracerctl top",
                           "Shows the live tasks every second, as top does: elapsed time, cores "
                           "busy over the last sampling window, memory, and what each task's "
                           "thread waits on now (network, lock, child, timer, pipe, disk, other).")
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "Print one snapshot as JSON.")
        .addOptionWithArg({'n', "iterations"}, KJ_BIND_METHOD(*this, setIterations), "<n>",
                          "Stop after n screens (default: until interrupted).")
        .callAfterParsing(KJ_BIND_METHOD(*this, top))
        .build();
  }

  kj::MainBuilder::Validity setIterations(kj::StringPtr value) {
    char* end;
    iterations = strtoul(value.cStr(), &end, 10);
    if (*end != '\0' || iterations == 0) return "--iterations: expected a positive number";
    return true;
  }

  kj::MainFunc runMain() {
    return kj::MainBuilder(context, "tracerctl run",
                           "Runs CMD as a task: registered before it execs, so every thread and "
                           "process it starts is counted. Exits with CMD's status; the report "
                           "goes to stderr (or, with --json, to stdout as a TaskReport).")
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "Print the TaskReport as JSON.")
        .addOptionWithArg({"flow"}, KJ_BIND_METHOD(*this, setFlow), "<name>",
                          "Flow name to file the task under (default: tracerctl).")
        .addOptionWithArg({"name"}, KJ_BIND_METHOD(*this, setName), "<task>",
                          "Task name (default: the command's basename).")
        .addOptionWithArg({"tags"}, KJ_BIND_METHOD(*this, setTags), "<a,b>", "Task tags.")
        .expectOneOrMoreArgs("<command>", KJ_BIND_METHOD(*this, addCommandWord))
        .callAfterParsing(KJ_BIND_METHOD(*this, run))
        .build();
  }

  kj::MainFunc reportsMain() {
    return kj::MainBuilder(context, "tracerctl reports", "Lists recently finished tasks.")
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "Print JSON (contract field names).")
        .addOptionWithArg({"limit"}, KJ_BIND_METHOD(*this, setLimit), "<n>",
                          "How many (default 20).")
        .callAfterParsing(KJ_BIND_METHOD(*this, printReports))
        .build();
  }

  kj::MainFunc recommendationsMain() {
    return kj::MainBuilder(context, "tracerctl recommendations",
                           "CPU and memory each task needs, from its history and policy.")
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "Print JSON (contract field names).")
        .addOptionWithArg({"flow"}, KJ_BIND_METHOD(*this, setFlowFilter), "<regex>",
                          "Only flows whose name matches (RE2, full match).")
        .callAfterParsing(KJ_BIND_METHOD(*this, printRecommendations))
        .build();
  }

  kj::MainFunc costsMain() {
    return kj::MainBuilder(context, "tracerctl costs",
                           "What the runs in the history cost over the last --since (used, "
                           "allocated and the waste between), against the window as long before "
                           "it: by deployment (their flow runs' footprints), flow or task. "
                           "Costs in different currencies are never added; runs without a cost "
                           "and runs the history no longer has are said under the table.")
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "Print the CostReport as JSON.")
        .addOptionWithArg({"by"}, KJ_BIND_METHOD(*this, setCostsBy), "<deployment|flow|task>",
                          "One row per deployment (default), flow or task, and currency.")
        .addOptionWithArg({"since"}, KJ_BIND_METHOD(*this, setCostsSince), "<duration>",
                          "The window's length: 12h, 7d, 2w ... (default 7d).")
        .callAfterParsing(KJ_BIND_METHOD(*this, printCosts))
        .build();
  }

  kj::MainBuilder::Validity setCostsBy(kj::StringPtr value) {
    if (value != "deployment" && value != "flow" && value != "task") {
      usageError("tracerctl costs",
                 kj::str("--by: '", value, "' is not one of deployment, flow, task"));
    }
    costsBy = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity setCostsSince(kj::StringPtr value) {
    std::string error;
    auto ns = policy::parseDuration(value.cStr(), error);
    if (!ns) usageError("tracerctl costs", kj::str("--since: ", error.c_str()));
    if (*ns == 0) {
      usageError("tracerctl costs",
                 kj::str("--since: '", value, "' is no window (expected a duration above 0, "
                         "e.g. 7d)"));
    }
    if (*ns > COSTS_SINCE_NS_MAX) {
      usageError("tracerctl costs",
                 kj::str("--since: '", value, "' is longer than the 100 years a window may be"));
    }
    costsSinceNs = *ns;
    return true;
  }

  kj::MainBuilder::Validity printCosts() {
    auto answer = askAdmin("costs", kj::str("{\"by\":", jsonQuoted(costsBy), ",\"since_ns\":",
                                            costsSinceNs, "}"));
    capnp::MallocMessageBuilder message;
    auto results = message.initRoot<proto::Admin::CostsResults>();
    fromContractJson(answer, capnp::toDynamic(results));
    if (json) context.exitInfo(toContractJson(results.getCosts().asReader()));
    context.exitInfo(costText(results.getCosts()));
    return true;
  }

  kj::MainFunc outboxMain() {
    return kj::MainBuilder(context, "tracerctl outbox",
                           "Lists artifacts: local (no PREFECT_API_URL), pending, delivered or "
                           "parked (refused by Prefect; the reason is shown).")
        .addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "Print JSON.")
        .addOption({"retry-parked"}, KJ_BIND_METHOD(*this, setRetryParked),
                   "Put parked artifacts back in line for delivery.")
        .addOption({"latest"}, KJ_BIND_METHOD(*this, setLatest),
                   "Print the newest markdown artifact's text.")
        .callAfterParsing(KJ_BIND_METHOD(*this, printOutbox))
        .build();
  }

  kj::MainBuilder::Validity setRetryParked() {
    retryParked = true;
    return true;
  }
  kj::MainBuilder::Validity setLatest() {
    latest = true;
    return true;
  }

  kj::MainBuilder::Validity printOutbox() {
    auto answer = askAdmin("artifacts", kj::str("{\"retry_parked\":", retryParked ? "true" : "false", "}"));
    if (json) context.exitInfo(answer);
    capnp::MallocMessageBuilder message;
    auto results = message.initRoot<proto::Admin::ArtifactsResults>();
    fromContractJson(answer, capnp::toDynamic(results));
    if (latest) {
      for (auto item: results.getArtifacts()) {
        if (kj::StringPtr(item.getType()) != "markdown") continue;
        if (item.getBodyOmitted()) {
          context.exitError("the newest markdown artifact is too large to send here: it is in "
                            "the sidecar's STATE_DIR/outbox.db");
        }
        capnp::MallocMessageBuilder scratch;
        auto body = scratch.initRoot<capnp::JsonValue>();
        decodeJson(item.getBody(), body);
        for (auto field: body.getObject()) {
          if (kj::StringPtr(field.getName()) == "data") context.exitInfo(field.getValue().getString());
        }
      }
      context.exitError("no markdown artifact yet");
    }
    kj::Vector<kj::String> lines;
    lines.add(kj::str("ID     STATUS     TYPE      ATTEMPTS  KEY"));
    for (auto item: results.getArtifacts()) {
      auto id = kj::str(item.getId());
      auto status = kj::str(item.getStatus());
      auto type = kj::str(item.getType());
      lines.add(kj::str(id, kj::repeat(' ', id.size() < 7 ? 7 - id.size() : 1), status,
                        kj::repeat(' ', status.size() < 11 ? 11 - status.size() : 1), type,
                        kj::repeat(' ', type.size() < 10 ? 10 - type.size() : 1),
                        item.getAttempts(), "         ", item.getKey(),
                        item.getLastError().size() ? kj::str("\n       ", item.getLastError())
                                                   : kj::str()));
    }
    if (results.getArtifacts().size() == 0) lines.add(kj::str("(empty)"));
    context.exitInfo(kj::strArray(lines, "\n"));
    return true;
  }

  kj::MainFunc reloadMain() {
    return kj::MainBuilder(context, "tracerctl reload", "Reloads the sidecar's policies.")
        .callAfterParsing(KJ_BIND_METHOD(*this, reload))
        .build();
  }

  kj::MainBuilder::Validity setFlowFilter(kj::StringPtr value) {
    flowFilter = kj::str(value);
    return true;
  }

  kj::MainBuilder::Validity printRecommendations() {
    auto answer = askAdmin("recommendations", kj::str("{\"flow\":", jsonQuoted(flowFilter), "}"));
    if (json) context.exitInfo(answer);
    capnp::MallocMessageBuilder message;
    auto results = message.initRoot<proto::Admin::RecommendationsResults>();
    fromContractJson(answer, capnp::toDynamic(results));
    kj::Vector<kj::String> lines;
    for (auto entry: results.getRecommendations()) {
      // Names, not the key: a deployment's key is its id (--json has both).
      auto owner = displayName(RunOwner{entry.getFlow(), "", entry.getDeployment()});
      lines.add(kj::str(owner, " / ", entry.getTask(), " (policy ", entry.getPolicy(),
                        "): ", recommendationText(entry.getRecommendation())));
    }
    if (lines.empty()) lines.add(kj::str("(no history yet)"));
    context.exitInfo(kj::strArray(lines, "\n"));
    return true;
  }

  kj::MainBuilder::Validity reload() {
    auto answer = askAdmin("reload_policies");
    capnp::MallocMessageBuilder message;
    auto results = message.initRoot<proto::Admin::ReloadPoliciesResults>();
    fromContractJson(answer, capnp::toDynamic(results));
    if (results.getOk()) context.exitInfo("policies reloaded");
    kj::Vector<kj::String> lines;
    for (auto error: results.getErrors()) lines.add(kj::str(error));
    context.exitError(kj::str("reload refused, the current policies stay:\n",
                              kj::strArray(lines, "\n")));
    return true;
  }

  kj::MainBuilder::Validity setFlow(kj::StringPtr value) {
    runOptions.flow = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity setName(kj::StringPtr value) {
    runOptions.name = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity setTags(kj::StringPtr value) {
    const char* start = value.begin();
    for (const char* p = value.begin();; ++p) {
      if (p == value.end() || *p == ',') {
        if (p > start) runOptions.tags.add(kj::heapString(start, p - start));
        if (p == value.end()) break;
        start = p + 1;
      }
    }
    return true;
  }
  kj::MainBuilder::Validity setLimit(kj::StringPtr value) {
    char* end;
    limit = strtoul(value.cStr(), &end, 10);
    if (*end != '\0' || limit == 0) return "--limit: expected a positive number";
    return true;
  }
  kj::MainBuilder::Validity addCommandWord(kj::StringPtr word) {
    command.add(word);
    return true;
  }

  kj::MainBuilder::Validity run() {
    client = tracer_client_open(socketPath.size() ? socketPath.cStr() : nullptr);
    if (!tracer_client_wait_connected(client, CONNECT_TIMEOUT_MS)) {
      fprintf(stderr, "tracerctl: %s\n", tracer_last_error());
    }
    runOptions.json = json;
    int status = runObserved(client, runOptions, command);
    tracer_client_close(client);
    client = nullptr;
    fflush(nullptr);
    _exit(status);  // the command's status, as a shell would see it
  }

  kj::MainBuilder::Validity printReports() {
    auto answer = askAdmin("recent_reports", kj::str("{\"limit\":", limit, "}"));
    if (json) context.exitInfo(answer);
    capnp::MallocMessageBuilder message;
    auto results = message.initRoot<proto::Admin::RecentReportsResults>();
    fromContractJson(answer, capnp::toDynamic(results));
    kj::Vector<kj::String> lines;
    for (auto report: results.getReports()) lines.add(reportText(report));
    if (lines.empty()) lines.add(kj::str("(no finished tasks)"));
    context.exitInfo(kj::strArray(lines, "\n\n"));
    return true;
  }

  // An Admin method's results as JSON, or exits with the reason.
  kj::String askAdmin(kj::StringPtr method, kj::StringPtr paramsJson = "") {
    return ask([&](tracer_client* c, int timeout) {
      return tracer_client_admin(c, method.cStr(), paramsJson.cStr(), timeout);
    });
  }

  // The answer's JSON, or exits with the reason the sidecar could not answer.
  kj::String ask(kj::Function<char*(tracer_client*, int)> query) {
    client = tracer_client_open(socketPath.size() ? socketPath.cStr() : nullptr);
    if (!tracer_client_wait_connected(client, CONNECT_TIMEOUT_MS)) {
      context.exitError(kj::str("tracerctl: ", tracer_last_error()));
    }
    char* answer = query(client, ANSWER_TIMEOUT_MS);
    if (answer == nullptr) context.exitError(kj::str("tracerctl: ", tracer_last_error()));
    auto text = kj::str(answer);
    tracer_free(answer);
    return text;
  }

  kj::MainBuilder::Validity printStatus() {
    auto answer = ask(tracer_client_status);
    if (json) {
      context.exitInfo(answer);
    }
    capnp::MallocMessageBuilder message;
    auto s = message.initRoot<proto::SidecarStatus>();
    fromContractJson(answer, capnp::toDynamic(s));
    auto text = kj::str(
        "tracer-sidecar ", s.getVersion(), ", up ", duration(s.getUptimeNs()), "\n",
        "collector     ", s.getCollector(),
        s.getCollectorNote().size() ? kj::str(" (", s.getCollectorNote(), ")") : kj::str(), "\n",
        "clients       ", s.getConnectedClients(), " connected\n",
        "flow runs     ", s.getLiveFlowRuns(), " live, ", s.getFinishedFlowRuns(), " finished, ",
        s.getCrashedFlowRuns(), " crashed\n",
        "tasks         ", s.getLiveTasks(), " live, ", s.getFinishedTasks(), " finished, ",
        s.getCrashedTasks(), " crashed\n",
        "events lost   ", s.getEventsLost(), "\n",
        "history       ", s.getHistoryRunsHeld(), " runs held in memory, ",
        s.getHistoryRunsDropped(), " dropped, ", s.getHistoryWriteFailures(),
        " write failures\n",
        "outbox        ", s.getArtifactsHeld(), " artifacts held in memory, ",
        s.getArtifactsDropped(), " dropped, ", s.getOutboxWriteFailures(), " write failures; ",
        s.getDeliveryRestarts(), " delivery restarts\n",
        "policies      ", s.getPolicies(),
        s.getPolicyReloadError().size()
            ? kj::str("\n              last reload refused:\n", s.getPolicyReloadError())
            : kj::str());
    context.exitInfo(text);
    return true;
  }

  kj::MainBuilder::Validity printTasks() {
    auto answer = askAdmin("live_tasks");
    if (json) context.exitInfo(answer);
    context.exitInfo(liveTaskTable(answer));
    return true;
  }

  // Like top: the live tasks again every second, until interrupted or
  // `iterations` are shown; --json prints one snapshot.
  kj::MainBuilder::Validity top() {
    if (json) context.exitInfo(askAdmin("live_tasks"));
    for (uint32_t shown = 0; iterations == 0 || shown < iterations; ++shown) {
      if (shown > 0) sleep(1);
      auto table = liveTaskTable(askAdmin("live_tasks"));
      // Clear the screen and home the cursor, as top does, on a terminal only.
      printf("%s%s\n", isatty(STDOUT_FILENO) ? "\x1b[H\x1b[2J" : "", table.cStr());
      fflush(stdout);
    }
    return true;
  }

  static kj::String liveTaskTable(kj::StringPtr answer) {
    capnp::MallocMessageBuilder message;
    auto results = message.initRoot<proto::Admin::LiveTasksResults>();
    fromContractJson(answer, capnp::toDynamic(results));
    kj::Vector<kj::String> lines;
    auto cell = [](kj::StringPtr text, size_t width) {
      return kj::str(text, kj::repeat(' ', text.size() < width ? width - text.size() : 1));
    };
    lines.add(kj::str(cell("FLOW/TASK", 32), cell("TASK RUN", 38), cell("TID", 9),
                      cell("ELAPSED", 10), cell("CORES", 7), cell("MEMORY", 11), "WAITING ON"));
    for (auto t: results.getTasks()) {
      auto on = t.getWaitingOnEndpoint().getAddress().size() > 0
                    ? kj::str(t.getWaitingOn(), " ", endpointName(t.getWaitingOnEndpoint()))
                    : kj::str(t.getWaitingOn());
      auto waiting = t.getWaitingOn().size() == 0 ? kj::str("(running)")
                     : t.getWaitingNs() == 0      ? kj::mv(on)
                                                  : kj::str(on, " for ", humanDuration(t.getWaitingNs()));
      lines.add(kj::str(cell(kj::str(t.getFlowName(), "/", t.getTaskName()), 32),
                        cell(t.getTaskRunId(), 38), cell(kj::str(t.getHostTid()), 9),
                        cell(duration(t.getRunningNs()), 10), cell(fixed(t.getCores(), 2), 7),
                        cell(humanBytes(t.getRssBytes()), 11), waiting));
    }
    if (results.getTasks().size() == 0) lines.add(kj::str("(no live tasks)"));
    return kj::strArray(lines, "\n");
  }

  kj::ProcessContext& context;
  PolicyCommand policies{context};
  kj::String socketPath;
  RunOptions runOptions;
  kj::Vector<kj::StringPtr> command;
  uint32_t limit = 20;
  uint32_t iterations = 0;  // tracerctl top: 0 is until interrupted
  kj::String method = kj::str("");
  kj::String params = kj::str("");
  kj::String flowFilter = kj::str("");
  kj::String costsBy = kj::str("deployment");
  uint64_t costsSinceNs = 0;  // the sidecar's default, 7 days
  bool retryParked = false;
  bool latest = false;
  tracer_client* client = nullptr;
  bool json = false;
};

}  // namespace tracer

namespace {

// KJ's parser reads "costs --since -1d" as an option missing its value:
// joined into "--since=-1d", the value reaches the option's own check and
// its one-line error. Only costs' options: other commands' arguments (a
// command `tracerctl run` runs) pass as they are.
std::vector<char*> withSinceJoined(int argc, char* argv[], std::vector<std::string>& joined) {
  std::vector<char*> args(argv, argv + argc);
  int command = 1;  // the subcommand, after tracerctl's own --socket
  while (command < argc && argv[command][0] == '-') {
    command += strcmp(argv[command], "--socket") == 0 ? 2 : 1;
  }
  if (command >= argc || strcmp(argv[command], "costs") != 0) return args;
  joined.reserve(argc);
  args.resize(command + 1);
  for (int i = command + 1; i < argc; ++i) {
    if (strcmp(argv[i], "--since") == 0 && i + 1 < argc && argv[i + 1][0] == '-') {
      joined.push_back(std::string("--since=") + argv[++i]);
      args.push_back(joined.back().data());
    } else {
      args.push_back(argv[i]);
    }
  }
  return args;
}

}  // namespace

int main(int argc, char* argv[]) {
  std::vector<std::string> joined;
  auto args = withSinceJoined(argc, argv, joined);
  kj::TopLevelProcessContext context(argv[0]);
  tracer::Tracerctl tracerctl(context);
  return kj::runMainAndExit(context, tracerctl.getMain(), args.size(), args.data());
}
