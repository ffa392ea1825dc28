// tracer-sidecar: observes Prefect task runs from the kernel and attributes what
// it sees to them. main() builds every piece, in dependency order, and runs the
// one KJ event loop until SIGTERM or SIGINT.

#include <capnp/message.h>
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <kj/debug.h>
#include <kj/main.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdlib>

#include "message_limits.h"
#include "metrics/metrics_endpoint.h"
#include "observe/attribution_table.h"
#include "observe/bpf_collector.h"
#include "observe/observer_metrics.h"
#include "observe/procfs_collector.h"
#include "observe/sampler.h"
#include "ops/accounts.h"
#include "ops/freed_memory.h"
#include "ops/log.h"
#include "ops/systemd.h"
#include "ops/unix_socket.h"
#include "policy/policy_loader.h"
#include "prefect/api_client.h"
#include "prefect/artifact_delivery.h"
#include "prefect/history_seeder.h"
#include "report/artifact_publisher.h"
#include "report/cost_rollup.h"
#include "rpc/connection_listener.h"
#include "rpc/services.h"
#include "rpc/serving_metrics.h"
#include "runs/advisor.h"
#include "runs/conductor.h"
#include "store/history.h"
#include "store/outbox.h"
#include "store/state_files.h"
#include "task_state.h"

namespace tracer {

// How many versions of a key's table artifact seed a new node's history.
constexpr uint32_t SEED_VERSIONS = 20;

class SidecarMain {
 public:
  explicit SidecarMain(kj::ProcessContext& context): context(context) {}

  kj::MainFunc getMain() {
    return kj::MainBuilder(context, "tracer-sidecar " TRACER_VERSION,
                           "Observes Prefect flow and task runs from the kernel (eBPF) and "
                           "attributes CPU, scheduling, memory, I/O and subprocesses to them. "
                           "Clients (the prefect-tracer plugin, tracerctl) connect over a Unix "
                           "socket; with systemd socket activation the passed socket is used.")
        .addOptionWithArg({"socket"}, KJ_BIND_METHOD(*this, setSocket), "<path>",
                          "Unix socket to serve (default: $TRACER_SOCKET or "
                          "/run/tracer/tracer.sock). Mode 0660.")
        .addOptionWithArg({"socket-group"}, KJ_BIND_METHOD(*this, setSocketGroup), "<group>",
                          "Group owning the socket, so its members (e.g. the Prefect worker's "
                          "user) may connect.")
        .addOptionWithArg({"state-dir"}, KJ_BIND_METHOD(*this, setStateDir), "<dir>",
                          "Directory for the sidecar's state (default /var/lib/tracer).")
        .addOptionWithArg({"policies"}, KJ_BIND_METHOD(*this, setPolicies), "<dir>",
                          "Policy directory (policies/*.yaml). The sidecar refuses to start on "
                          "a bad set; SIGHUP or `tracerctl policy reload` reloads it, keeping "
                          "the current set if the new one has errors. Default: built-in "
                          "defaults.")
        .addOptionWithArg({"prefect-api-url"}, KJ_BIND_METHOD(*this, setPrefectApiUrl), "<url>",
                          "Where artifacts go (default: $PREFECT_API_URL; without one they stay "
                          "local). Credentials: PREFECT_API_AUTH_STRING, PREFECT_API_KEY or "
                          "PREFECT_API_KEY_FILE.")
        .addOptionWithArg({"allow-uid"}, KJ_BIND_METHOD(*this, addAllowedUser), "<user>",
                          "May connect (repeatable; name or number). With no --allow-uid or "
                          "--allow-group, anyone who can open the socket may; root always may.")
        .addOptionWithArg({"allow-group"}, KJ_BIND_METHOD(*this, addAllowedGroup), "<group>",
                          "Members (primary or supplementary) may connect (repeatable).")
        .addOptionWithArg({"admin-group"}, KJ_BIND_METHOD(*this, addAdminGroup), "<group>",
                          "Members may use Admin (tracerctl status of all runs, reports, "
                          "reload, outbox) besides root (repeatable).")
        .addOptionWithArg({"max-scopes-per-connection"}, KJ_BIND_METHOD(*this, setMaxScopes),
                          "<n>", "Live flow-run scopes and tasks one connection may hold "
                          "(default 4096).")
        .addOptionWithArg({"max-calls-per-second"}, KJ_BIND_METHOD(*this, setMaxCallRate), "<n>",
                          "Calls one connection may make per second (and four times as many "
                          "messages of any kind); above it the sidecar reads that client more "
                          "slowly (default 20000).")
        .addOptionWithArg({"max-connections"}, KJ_BIND_METHOD(*this, setMaxConnections), "<n>",
                          "Connections at once, the last 64 for root only (default: what the "
                          "descriptor limit allows, at most 4096; docs/deployment.md).")
        .addOptionWithArg({"max-connections-per-uid"},
                          KJ_BIND_METHOD(*this, setMaxConnectionsPerUid), "<n>",
                          "Connections at once of one uid other than root (default: a quarter "
                          "of --max-connections).")
        .addOptionWithArg({"max-live-tasks-per-uid"}, KJ_BIND_METHOD(*this, setMaxTasksPerUid),
                          "<n>",
                          "Live tasks at once of one uid other than root, across its "
                          "connections (default: a quarter of --max-live-tasks).")
        .addOptionWithArg({"max-tracked-threads-per-uid"},
                          KJ_BIND_METHOD(*this, setMaxThreadsPerUid), "<n>",
                          "Threads the tracked threads of one uid's tasks (root's are not "
                          "counted) may have started and not yet ended; a thread started past "
                          "it is not tracked, and counted as lost for its task (default: a "
                          "quarter of --max-tracked-threads).")
        .addOptionWithArg({"metrics-listen"}, KJ_BIND_METHOD(*this, setMetricsListen),
                          "<host:port>", "Serve Prometheus metrics at http://HOST:PORT/metrics.")
        .addOptionWithArg({"metrics-task-series"}, KJ_BIND_METHOD(*this, setTaskSeries), "<n>",
                          "(flow, task) name pairs with their own per-task series; the rest "
                          "are summed under \"other\" (default 500).")
        .addOptionWithArg({"drain-seconds"}, KJ_BIND_METHOD(*this, setDrainSeconds), "<n>",
                          "On SIGTERM, how long to keep delivering artifacts that are due "
                          "before exiting; the rest stay in the outbox (default 5).")
        .addOptionWithArg({"history-runs"}, KJ_BIND_METHOD(*this, setHistoryRuns), "<n>",
                          "Runs kept per task in the history (default 200).")
        .addOptionWithArg({"outbox-retention-days"}, KJ_BIND_METHOD(*this, setOutboxRetention),
                          "<n>",
                          "Days delivered and local artifacts stay in the outbox (default 30); "
                          "undelivered ones stay until delivered.")
        .addOptionWithArg({"max-tracked-threads"}, KJ_BIND_METHOD(*this, setMaxThreads), "<n>",
                          "Size of the kernel's tracked-thread map (default 65536; each entry "
                          "is some 240 bytes of kernel memory, all taken at start).")
        .addOptionWithArg({"max-live-tasks"}, KJ_BIND_METHOD(*this, setMaxTasks), "<n>",
                          "Size of the kernel's per-task counter map (default 16384; some 300 "
                          "bytes of kernel memory each, all taken at start).")
        .addOptionWithArg({"collector"}, KJ_BIND_METHOD(*this, setCollector), "<bpf|procfs>",
                          "Force a collector (default: bpf, falling back to procfs when BPF "
                          "cannot load).")
        .addOption({"without-start-marks"}, KJ_BIND_METHOD(*this, setWithoutStartMarks),
                   "Do not load the fentry program that marks task starts (a registration "
                   "that arrives late then leaves unknown what its thread did meanwhile; "
                   "docs/observer.md).")
        .addOption({"debug"}, KJ_BIND_METHOD(*this, setVerbose), "Log debug messages.")
        .callAfterParsing(KJ_BIND_METHOD(*this, run))
        .build();
  }

 private:
  kj::MainBuilder::Validity setSocket(kj::StringPtr value) {
    if (value.size() >= sizeof(sockaddr_un::sun_path)) {
      return kj::str("the path is ", value.size(), " bytes; a Unix socket's holds at most ",
                     sizeof(sockaddr_un::sun_path) - 1);
    }
    socketPath = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity setSocketGroup(kj::StringPtr value) {
    socketGroup = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity setStateDir(kj::StringPtr value) {
    stateDir = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity setMaxThreads(kj::StringPtr value) {
    char* end;
    unsigned long n = strtoul(value.cStr(), &end, 10);
    if (*end != '\0' || n < 1024 || n > (1u << 20)) {
      return "expected a number from 1024 to 1048576 (that many take some 240 MiB of kernel "
             "memory)";
    }
    bpfSettings.threadsMaxEntries = n;
    return true;
  }
  kj::MainBuilder::Validity setPolicies(kj::StringPtr value) {
    policiesDir = value.cStr();
    return true;
  }
  kj::MainBuilder::Validity setPrefectApiUrl(kj::StringPtr value) {
    prefectApiUrl = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity addAllowedUser(kj::StringPtr value) {
    KJ_IF_MAYBE(uid, lookupUser(value)) {
      access.allowedUids.push_back(*uid);
      return true;
    }
    return kj::str("--allow-uid: no such user: ", value);
  }
  kj::MainBuilder::Validity addAllowedGroup(kj::StringPtr value) {
    KJ_IF_MAYBE(gid, lookupGroup(value)) {
      access.allowedGids.push_back(*gid);
      return true;
    }
    return kj::str("--allow-group: no such group: ", value);
  }
  kj::MainBuilder::Validity addAdminGroup(kj::StringPtr value) {
    KJ_IF_MAYBE(gid, lookupGroup(value)) {
      access.adminGids.push_back(*gid);
      return true;
    }
    return kj::str("--admin-group: no such group: ", value);
  }
  kj::MainBuilder::Validity setMaxScopes(kj::StringPtr value) {
    KJ_IF_MAYBE(n, numberIn(value, 1, 1u << 22)) {
      access.maxLiveScopes = *n;
      return true;
    }
    return "--max-scopes-per-connection: expected 1 to 4194304";
  }
  kj::MainBuilder::Validity setMaxCallRate(kj::StringPtr value) {
    KJ_IF_MAYBE(n, numberIn(value, 1, 10000000)) {
      access.maxCallsPerSecond = *n;
      return true;
    }
    return "--max-calls-per-second: expected 1 to 10000000";
  }
  kj::MainBuilder::Validity setMaxConnections(kj::StringPtr value) {
    KJ_IF_MAYBE(n, numberIn(value, AccessPolicy::ROOT_CONNECTIONS + 1, 1u << 20)) {
      maxConnections = *n;
      return true;
    }
    return kj::str("expected ", AccessPolicy::ROOT_CONNECTIONS + 1, " to 1048576");
  }
  kj::MainBuilder::Validity setMaxConnectionsPerUid(kj::StringPtr value) {
    return perUidLimit(value, 1u << 20, maxConnectionsPerUid);
  }
  kj::MainBuilder::Validity setMaxTasksPerUid(kj::StringPtr value) {
    return perUidLimit(value, 1u << 18, maxLiveTasksPerUid);
  }
  kj::MainBuilder::Validity setMaxThreadsPerUid(kj::StringPtr value) {
    return perUidLimit(value, 1u << 20, maxTrackedThreadsPerUid);
  }
  // A per-uid limit from 1 to `most`; unset, it defaults to a share of the node's.
  static kj::MainBuilder::Validity perUidLimit(kj::StringPtr value, uint32_t most,
                                               kj::Maybe<uint32_t>& into) {
    KJ_IF_MAYBE(n, numberIn(value, 1, most)) {
      into = *n;
      return true;
    }
    return kj::str("expected 1 to ", most);
  }
  kj::MainBuilder::Validity setTaskSeries(kj::StringPtr value) {
    KJ_IF_MAYBE(n, numberIn(value, 0, 100000)) {
      taskSeries = *n;
      return true;
    }
    return "--metrics-task-series: expected 0 to 100000";
  }
  kj::MainBuilder::Validity setDrainSeconds(kj::StringPtr value) {
    KJ_IF_MAYBE(n, numberIn(value, 0, 600)) {
      drainSeconds = *n;
      return true;
    }
    return "--drain-seconds: expected 0 to 600";
  }
  static kj::Maybe<uint32_t> numberIn(kj::StringPtr text, unsigned long low, unsigned long high) {
    char* end;
    unsigned long n = strtoul(text.cStr(), &end, 10);
    if (text.size() == 0 || *end != '\0' || n < low || n > high) return nullptr;
    return static_cast<uint32_t>(n);
  }
  kj::MainBuilder::Validity setMetricsListen(kj::StringPtr value) {
    KJ_IF_MAYBE(colon, value.findLast(':')) {
      char* end;
      auto port = kj::str(value.slice(*colon + 1));
      unsigned long n = strtoul(port.cStr(), &end, 10);
      if (*colon == 0 || port.size() == 0 || *end != '\0' || n < 1 || n > 65535) {
        return "expected HOST:PORT, a port from 1 to 65535 (e.g. 127.0.0.1:9464)";
      }
    } else {
      return "expected HOST:PORT (e.g. 127.0.0.1:9464)";
    }
    metricsListen = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity setHistoryRuns(kj::StringPtr value) {
    char* end;
    unsigned long n = strtoul(value.cStr(), &end, 10);
    if (*end != '\0' || n < 1 || n > policy::HISTORY_RUNS_MAX) {
      return kj::str("--history-runs: expected 1 to ", policy::HISTORY_RUNS_MAX);
    }
    historyRuns = n;
    return true;
  }
  kj::MainBuilder::Validity setOutboxRetention(kj::StringPtr value) {
    char* end;
    unsigned long n = strtoul(value.cStr(), &end, 10);
    if (*end != '\0' || n < 1 || n > 3650) return "--outbox-retention-days: expected 1 to 3650";
    outboxRetentionDays = n;
    return true;
  }
  kj::MainBuilder::Validity setMaxTasks(kj::StringPtr value) {
    char* end;
    unsigned long n = strtoul(value.cStr(), &end, 10);
    if (*end != '\0' || n < 64 || n > (1u << 18)) {
      return "expected a number from 64 to 262144 (that many take some 75 MiB of kernel memory)";
    }
    bpfSettings.tasksMaxEntries = n;
    return true;
  }
  kj::MainBuilder::Validity setCollector(kj::StringPtr value) {
    if (value != "bpf" && value != "procfs") return "--collector: expected bpf or procfs";
    forcedCollector = kj::str(value);
    return true;
  }
  kj::MainBuilder::Validity setWithoutStartMarks() {
    bpfSettings.withoutStartMarks = true;
    return true;
  }
  kj::MainBuilder::Validity setVerbose() {
    verbose = true;
    return true;
  }

  kj::MainBuilder::Validity run() {
    Log log(verbose);
    signal(SIGPIPE, SIG_IGN);
    kj::UnixEventPort::captureSignal(SIGTERM);
    kj::UnixEventPort::captureSignal(SIGINT);
    kj::UnixEventPort::captureSignal(SIGHUP);
    auto io = kj::setupAsyncIo();

    KJ_IF_MAYBE(problem, limitConnections(log)) { return kj::mv(*problem); }
    auto unusable = securePrivateDirectory(stateDir, log);
    if (unusable.size() > 0) return kj::str("--state-dir: ", unusable);
    auto historyPath = kj::str(stateDir, "/history.db");
    auto outboxPath = kj::str(stateDir, "/outbox.db");
    prepareStateFile(historyPath, "the history of earlier runs (recommendations start over)", log);
    prepareStateFile(outboxPath, "the artifacts it held; those not yet delivered are lost "
                     "(their number cannot be read)", log);
    History history(historyPath.cStr(), historyRuns);
    Outbox outbox(outboxPath.cStr());
    kj::Maybe<kj::Own<PrefectApiClient>> api;
    kj::Maybe<kj::Own<ArtifactDelivery>> delivery;
    kj::Maybe<kj::Own<HistorySeeder>> seeder;
    kj::String apiError;
    auto apiSettings = prefectApiFromEnvironment(prefectApiUrl, apiError);
    if (apiError.size() > 0) return kj::mv(apiError);
    KJ_IF_MAYBE(settings, apiSettings) {
      log.info(kj::str("artifacts go to the Prefect API at ", (*settings)->describe()));
      auto& client = *api.emplace(kj::heap<PrefectApiClient>(io, kj::mv(**settings)));
      delivery = kj::heap<ArtifactDelivery>(log, outbox, io.provider->getTimer(), client);
      seeder = kj::heap<HistorySeeder>(log, history, client, SEED_VERSIONS);
    } else {
      log.info("no PREFECT_API_URL: artifacts stay local (tracerctl outbox)");
    }
    kj::Maybe<HistorySeeder&> seeding;
    KJ_IF_MAYBE(s, seeder) { seeding = **s; }
    Advisor advisor(log, policiesDir, history, seeding);
    if (!advisor.startupError().empty()) {
      context.exitError(
          kj::str("refusing to start with a bad policy set:\n", advisor.startupError().c_str()));
    }
    ArtifactPublisher publisher(
        log, outbox, delivery != nullptr,
        [&delivery]() {
          KJ_IF_MAYBE(d, delivery) { (*d)->wake(); }
        },
        int64_t(outboxRetentionDays) * 24 * 3600 * 1000000000);
    kj::Vector<const StatusPart*> statusParts;
    statusParts.addAll(std::initializer_list<const StatusPart*>{&history, &publisher});
    kj::Promise<void> delivering = kj::NEVER_DONE;
    KJ_IF_MAYBE(d, delivery) {
      statusParts.add(d->get());
      delivering = (*d)->run().eagerlyEvaluate(nullptr);  // restarts itself on errors
    }
    kj::Own<Collector> collector;
    kj::String whyNot;
    KJ_IF_MAYBE(chosen, chooseCollector(log, io.unixEventPort, whyNot)) {
      collector = kj::mv(*chosen);
    } else {
      return kj::str("--collector bpf: the kernel observer cannot load (", whyNot,
                     "); without --collector the /proc fallback runs");
    }
    const kj::MonotonicClock& clock = kj::systemPreciseMonotonicClock();
    TaskMetrics taskMetrics(taskSeries);
    RpcMetrics rpcMetrics(clock);
    Conductor conductor(advisor, taskMetrics, publisher, io.provider->getTimer(), log);
    AttributionTable table(*collector, clock, conductor, log);
    CostRollup costs(history.path(), history.runsKept());
    Services services{table, table, advisor, publisher, costs, access, rpcMetrics, log, clock,
                      clock.now()};
    services.statusParts = statusParts.asPtr();
    auto reloading = reloadOnHangup(io.unixEventPort, advisor).eagerlyEvaluate(nullptr);
    auto observing = collector->run(table).exclusiveJoin(
        sampleForever(table, io.provider->getTimer()));
    observing = observing.eagerlyEvaluate([&log](kj::Exception&& e) {
      log.error(kj::str("observation stopped: ", e.getDescription()));
    });

    kj::Maybe<kj::Own<ListeningSocket>> ownSocket;
    kj::Own<kj::ConnectionReceiver> receiver;
    kj::String where;
    KJ_IF_MAYBE(fd, socketFromSystemd()) {
      receiver = io.lowLevelProvider->wrapListenSocketFd(kj::AutoCloseFd(*fd));
      where = kj::str("socket passed by systemd (fd ", *fd, ")");
    } else {
      kj::Maybe<gid_t> group;
      if (socketGroup.size() > 0) {
        KJ_IF_MAYBE(gid, lookupGroup(socketGroup)) {
          group = *gid;
        } else {
          return kj::str("--socket-group: no such group: ", socketGroup);
        }
      }
      auto path = socketPath.size() > 0 ? kj::str(socketPath) : defaultSocketPath();
      KJ_IF_MAYBE(why, unsafeSocketDirectory(path)) { return kj::str("--socket ", path, ": ", *why); }
      auto socket = kj::heap<ListeningSocket>(*io.lowLevelProvider, path, group);
      receiver = socket->takeReceiver();
      ownSocket = kj::mv(socket);
      where = kj::str(path);
    }

    capnp::ReaderOptions limits;
    limits.traversalLimitInWords = RPC_MESSAGE_WORDS_MAX;  // most messages are a few KiB
    limits.nestingLimit = 16;
    auto listener =
        kj::heap<ConnectionListener>(services, io.provider->getTimer(), kj::mv(receiver), limits);

    kj::HttpHeaderTable metricsHeaders;
    ServingMetrics serving(services);
    ObserverMetrics observer(table, *collector);
    kj::Vector<MetricsSource*> metricsSources;
    metricsSources.addAll(
        std::initializer_list<MetricsSource*>{&serving, &observer, &history, &outbox, &publisher});
    KJ_IF_MAYBE(d, delivery) { metricsSources.add(d->get()); }
    metricsSources.addAll(
        std::initializer_list<MetricsSource*>{&advisor, &rpcMetrics, &taskMetrics});
    MetricsEndpoint metrics(metricsSources.releaseAsArray(), metricsHeaders, clock);
    kj::HttpServer metricsServer(io.provider->getTimer(), metricsHeaders, metrics);
    kj::Maybe<kj::Own<kj::ConnectionReceiver>> metricsPort;
    kj::Promise<void> servingMetrics = kj::NEVER_DONE;
    if (metricsListen.size() > 0) {
      kj::Own<kj::ConnectionReceiver> listening;
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
        auto address = io.provider->getNetwork().parseAddress(metricsListen).wait(io.waitScope);
        listening = address->listen();
      })) {
        return kj::str("--metrics-listen ", metricsListen, ": cannot listen there (",
                       e->getDescription(), ")");
      }
      auto& port = *metricsPort.emplace(kj::mv(listening));
      servingMetrics = metricsServer.listenHttp(port).eagerlyEvaluate([&log](kj::Exception&& e) {
        log.error(kj::str("metrics endpoint stopped: ", e.getDescription()));
      });
      log.info(kj::str("metrics at http://", metricsListen, "/metrics"));
    }
    auto returningFreed =
        returnFreedMemoryForever(io.provider->getTimer()).eagerlyEvaluate(nullptr);
    kj::Promise<void> watchdog = kj::NEVER_DONE;
    KJ_IF_MAYBE(interval, watchdogInterval()) {
      watchdog = keepWatchdogFed(io.provider->getTimer(), *interval).eagerlyEvaluate(nullptr);
    }
    auto status = kj::str("serving on ", where, "; collector ", collector->name());
    log.info(kj::str("tracer-sidecar ", TRACER_VERSION, " ", status));
    notifySystemd(kj::str("READY=1\nSTATUS=", status));

    auto stopped = io.unixEventPort.onSignal(SIGTERM)
                       .exclusiveJoin(io.unixEventPort.onSignal(SIGINT))
                       .then([](siginfo_t info) { return info.si_signo; });
    int signo = listener->run()
                    .then([]() { return 0; })
                    .exclusiveJoin(kj::mv(stopped))
                    .wait(io.waitScope);
    notifySystemd("STOPPING=1");
    log.info(kj::str("stopping on signal ", signo, " (", strsignal(signo), "): draining"));
    kj::Maybe<ArtifactDelivery&> deliveryIfAny;
    KJ_IF_MAYBE(d, delivery) { deliveryIfAny = **d; }
    drain(kj::mv(listener), table, conductor, deliveryIfAny, outbox, io, log);
    reportUnwritten(advisor, history, publisher, log);
    return true;
  }

  // What a stop owes: tasks still live are ended (as crashed: nothing will
  // observe the rest of them) so their reports and flow artifacts are written,
  // the history is committed, and artifacts due for delivery get up to
  // --drain-seconds to reach Prefect. Whatever is left stays in the outbox
  // for the next start.
  void drain(kj::Own<ConnectionListener> listener, AttributionTable& table, Conductor& conductor,
             kj::Maybe<ArtifactDelivery&> delivery, Outbox& outbox, kj::AsyncIoContext& io,
             Log& log) {
    uint32_t live = table.liveTaskCount();
    listener = nullptr;  // closes every connection: their scopes end
    conductor.finishPending();
    KJ_IF_MAYBE(d, delivery) {
      auto& timer = io.provider->getTimer();
      auto deadline = timer.now() + drainSeconds * kj::SECONDS;
      while (d->hasDue() && timer.now() < deadline) {
        timer.afterDelay(20 * kj::MILLISECONDS).wait(io.waitScope);
      }
    }
    auto counts = outbox.countsByStatus();
    log.info(kj::str("drained: ", live, " live tasks ended, ", counts["pending"],
                     " artifacts left pending for the next start"));
  }

  // What a full state disk still holds in memory at the stop is lost with the
  // process: one last try, then one line that says how much (the artifacts'
  // line is the publisher's, as it goes).
  static void reportUnwritten(Advisor& advisor, History& history, ArtifactPublisher& publisher,
                              Log& log) {
    advisor.flush();
    publisher.storeHeld();
    if (history.runsHeld() == 0) return;
    log.error(kj::str(history.runsHeld(), " finished runs held in memory are lost: the history "
                      "could not write them before the sidecar stopped"));
  }

  // The event loop itself pets the watchdog: if it stalls, systemd restarts us.
  static kj::Promise<void> keepWatchdogFed(kj::Timer& timer, kj::Duration interval) {
    notifySystemd("WATCHDOG=1");
    return timer.afterDelay(interval).then(
        [&timer, interval]() { return keepWatchdogFed(timer, interval); });
  }

  static kj::Promise<void> reloadOnHangup(kj::UnixEventPort& events, Advisor& advisor) {
    return events.onSignal(SIGHUP).then([&events, &advisor](siginfo_t) {
      advisor.reload();
      return reloadOnHangup(events, advisor);
    });
  }

  // Takes the descriptors the process may have (its soft limit up to the
  // hard one), and caps connections within them: each holds two (its socket
  // and the peer's pidfd), and the rest (BPF objects, state files, metrics,
  // refusals being told why) keep DESCRIPTORS_KEPT.
  kj::Maybe<kj::String> limitConnections(Log& log) {
    constexpr uint32_t DESCRIPTORS_KEPT = 256, PER_CONNECTION = 2, DEFAULT_MOST = 4096;
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_cur < files.rlim_max) {
      files.rlim_cur = files.rlim_max;
      setrlimit(RLIMIT_NOFILE, &files);
      getrlimit(RLIMIT_NOFILE, &files);
    }
    uint64_t room = files.rlim_cur > DESCRIPTORS_KEPT
                        ? (files.rlim_cur - DESCRIPTORS_KEPT) / PER_CONNECTION : 0;
    KJ_IF_MAYBE(asked, maxConnections) {
      if (*asked > room) {
        return kj::str("--max-connections ", *asked, ": the descriptor limit (", files.rlim_cur,
                       ") has room for ", room, "; raise it (LimitNOFILE) or ask for fewer");
      }
      access.maxConnections = *asked;
    } else {
      if (room <= AccessPolicy::ROOT_CONNECTIONS) {
        return kj::str("the descriptor limit (", files.rlim_cur, ") leaves no room for "
                       "connections; raise it (LimitNOFILE, ulimit -n)");
      }
      access.maxConnections = uint32_t(kj::min(room, uint64_t(DEFAULT_MOST)));
    }
    access.maxConnectionsPerUid =
        maxConnectionsPerUid.orDefault(kj::max(1u, access.maxConnections / 4));
    access.maxLiveTasksPerUid =
        maxLiveTasksPerUid.orDefault(kj::max(1u, bpfSettings.tasksMaxEntries / 4));
    log.info(kj::str("connections: at most ", access.maxConnections, " (the last ",
                     AccessPolicy::ROOT_CONNECTIONS, " root's), ", access.maxConnectionsPerUid,
                     " per uid; descriptor limit ", files.rlim_cur));
    return nullptr;
  }

  // Nothing when --collector bpf was asked for and cannot load: `whyNot` says why.
  kj::Maybe<kj::Own<Collector>> chooseCollector(Log& log, kj::UnixEventPort& events,
                                                kj::String& whyNot) {
    whyNot = kj::str("forced with --collector procfs");
    if (forcedCollector != "procfs") {
      bpfSettings.threadsPerUid =
          maxTrackedThreadsPerUid.orDefault(kj::max(1u, bpfSettings.threadsMaxEntries / 4));
      KJ_IF_MAYBE(bpf, loadBpfCollector(log, events, bpfSettings, whyNot)) {
        return kj::mv(*bpf);
      }
      if (forcedCollector == "bpf") return nullptr;
    }
    log.warn(kj::str("kernel observer unavailable, using /proc: ", whyNot));
    auto exits = TaskstatsExits::open(events);
    if (exits.is<kj::String>()) log.warn(exits.get<kj::String>());
    return makeProcfsCollector(kj::mv(whyNot), kj::mv(exits));
  }

  static kj::String defaultSocketPath() {
    const char* fromEnv = getenv("TRACER_SOCKET");
    return kj::str(fromEnv != nullptr && *fromEnv != '\0' ? fromEnv : "/run/tracer/tracer.sock");
  }

  kj::ProcessContext& context;
  kj::String socketPath;
  kj::String socketGroup;
  kj::String stateDir = kj::str("/var/lib/tracer");
  kj::String forcedCollector = kj::str("");
  std::string policiesDir;
  kj::String prefectApiUrl = kj::str("");
  kj::String metricsListen = kj::str("");
  uint32_t historyRuns = 200;
  kj::Maybe<uint32_t> maxConnections;
  kj::Maybe<uint32_t> maxConnectionsPerUid;
  kj::Maybe<uint32_t> maxLiveTasksPerUid;
  kj::Maybe<uint32_t> maxTrackedThreadsPerUid;
  uint32_t outboxRetentionDays = 30;
  AccessPolicy access;
  uint32_t taskSeries = 500;
  uint32_t drainSeconds = 5;
  BpfSettings bpfSettings{THREADS_MAX_ENTRIES, TASK_COUNTERS_MAX_ENTRIES, 100 * 1000 * 1000};
  bool verbose = false;
};

}  // namespace tracer

KJ_MAIN(tracer::SidecarMain)
