// tracerctl: the operator's view of a running tracer-sidecar. It talks to the
// sidecar through libtracer_client, exactly as the Prefect plugin does.

#include <capnp/message.h>
#include <kj/main.h>

#include <cstdlib>

#include "contract_json.h"
#include "tracer.capnp.h"
#include "tracer_client.h"

namespace tracer {

namespace {

constexpr int CONNECT_TIMEOUT_MS = 2000;
constexpr int ANSWER_TIMEOUT_MS = 5000;

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
        .build();
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

  // The answer's JSON, or exits with the reason the sidecar could not answer.
  kj::String ask(char* (*query)(tracer_client*, int)) {
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
        "events lost   ", s.getEventsLost());
    context.exitInfo(text);
    return true;
  }

  kj::MainBuilder::Validity printTasks() {
    auto answer = ask(tracer_client_live_tasks);
    if (json) context.exitInfo(answer);
    capnp::MallocMessageBuilder message;
    auto results = message.initRoot<proto::Admin::LiveTasksResults>();
    fromContractJson(answer, capnp::toDynamic(results));
    kj::Vector<kj::String> lines;
    lines.add(kj::str("TASK RUN                              TID      CALLER   RUNNING  NAME"));
    for (auto t: results.getTasks()) {
      lines.add(kj::str(kj::repeat(' ', 0), t.getTaskRunId(),
                        kj::repeat(' ', t.getTaskRunId().size() < 38 ? 38 - t.getTaskRunId().size() : 1),
                        t.getHostTid(), "  ", t.getCallerPid(), "  ", duration(t.getRunningNs()),
                        "  ", t.getFlowName(), "/", t.getTaskName()));
    }
    if (results.getTasks().size() == 0) lines.add(kj::str("(no live tasks)"));
    context.exitInfo(kj::strArray(lines, "\n"));
    return true;
  }

  kj::ProcessContext& context;
  kj::String socketPath;
  tracer_client* client = nullptr;
  bool json = false;
};

}  // namespace tracer

KJ_MAIN(tracer::Tracerctl)
