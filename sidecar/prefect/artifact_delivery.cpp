#include "prefect/artifact_delivery.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <kj/debug.h>

#include <algorithm>

#include "contract_json.h"
#include "prefect/json_fields.h"
#include "report/run_keys.h"

#include "ops/wall_clock.h"

namespace tracer {

namespace {

// Versions of one key for one flow run: normally one, a few after retries.
constexpr uint32_t FOUND_LIMIT = 50;

}  // namespace

ArtifactDelivery::ArtifactDelivery(Log& log, Outbox& outbox, kj::Timer& timer,
                                   PrefectApi& api)
    : log(log), outbox(outbox), timer(timer), api(api) {}

void ArtifactDelivery::wake() {
  KJ_IF_MAYBE(fulfiller, woken) { (*fulfiller)->fulfill(); }
  woken = nullptr;
}

bool ArtifactDelivery::hasDue() {
  return !outbox.due(realtimeNs(), 1).empty();
}

kj::Promise<void> ArtifactDelivery::run() {
  return kj::evalNow([this]() { return loop(); }).catch_([this](kj::Exception&& e) {
    int64_t wait = backoff.delayNs(restartsSinceDelivered++);
    ++tally.restarts;
    log.error(kj::str("artifact delivery stopped (", e.getDescription(), "); restarting in ",
                      wait / 1000000, " ms"));
    return timer.afterDelay(wait * kj::NANOSECONDS).then([this]() { return run(); });
  });
}

kj::Promise<void> ArtifactDelivery::loop() {
  auto due = outbox.due(realtimeNs(), 1);
  if (!due.empty()) {
    return deliver(kj::mv(due[0])).then([this]() { return loop(); });
  }
  auto wakeUp = kj::newPromiseAndFulfiller<void>();
  woken = kj::mv(wakeUp.fulfiller);
  kj::Promise<void> next = kj::mv(wakeUp.promise);
  if (auto at = outbox.nextAttemptNs()) {
    int64_t wait = std::max<int64_t>(0, *at - realtimeNs());
    next = next.exclusiveJoin(timer.afterDelay(wait * kj::NANOSECONDS));
  }
  return next.then([this]() { return loop(); });
}

void ArtifactDelivery::retry(const OutboxEntry& entry, kj::Maybe<uint64_t> notBeforeSeconds,
                             kj::StringPtr why, bool answered) {
  int64_t wait = backoff.delayNs(entry.attempts);
  KJ_IF_MAYBE(seconds, notBeforeSeconds) {
    wait = std::max<int64_t>(wait, int64_t(*seconds) * 1000000000);
  }
  outbox.retryLater(entry.id, realtimeNs() + wait, why.cStr(), answered);
  ++tally.retried;
  log.warn(kj::str("artifact ", entry.key.c_str(), " not delivered (", why, "); retrying in ",
                   wait / 1000000, " ms"),
           {entry.flowRunId.c_str(), nullptr});
}

kj::Promise<void> ArtifactDelivery::deliver(OutboxEntry entry) {
  if (!entry.inFlight || entry.artifactId.empty() || !entry.prefectId.empty()) {
    return send(kj::mv(entry));
  }
  // An earlier attempt went out and was never answered: Prefect may have it.
  return alreadyStored(entry).then(
      [this, entry](kj::Maybe<kj::String> stored) mutable -> kj::Promise<void> {
        KJ_IF_MAYBE(prefectId, stored) {
          if (entry.live) {
            // Its body may have been replaced since: updated in place next.
            entry.prefectId = prefectId->cStr();
            return send(kj::mv(entry));
          }
        } else {
          return send(kj::mv(entry));
        }
        outbox.delivered(entry);
        ++tally.foundDelivered;
        log.info(kj::str("artifact ", entry.key.c_str(), " was stored by an unanswered attempt; "
                         "not sending it again"),
                 {entry.flowRunId.c_str(), nullptr});
        return kj::READY_NOW;
      },
      [this, entry](kj::Exception&& e) {
        retry(entry, nullptr, kj::str("cannot tell whether an earlier attempt arrived: ",
                                      e.getDescription()), false);
      });
}

kj::Promise<kj::Maybe<kj::String>> ArtifactDelivery::alreadyStored(const OutboxEntry& entry) {
  // Versions of this key for this flow run (a live artifact has no key: the
  // flow run's artifacts); ours carries our artifact id.
  auto flowRun = isUuid(entry.flowRunId.c_str())
      ? kj::str("\"flow_run_id\":{\"any_\":[", jsonQuoted(entry.flowRunId.c_str()), "]}")
      : kj::str("");
  auto key = entry.live ? kj::str("")
                        : kj::str("\"key\":{\"any_\":[", jsonQuoted(entry.key.c_str()), "]}",
                                  flowRun.size() > 0 ? "," : "");
  auto filter = kj::str("{\"artifacts\":{", key, flowRun, "},\"sort\":\"CREATED_DESC\",\"limit\":",
                        FOUND_LIMIT, "}");
  auto artifactId = entry.artifactId;
  return api.post("/artifacts/filter", kj::mv(filter))
      .then([artifactId](ApiResponse response) -> kj::Maybe<kj::String> {
        KJ_REQUIRE(response.statusCode == 200, "artifact filter refused", response.statusCode);
        capnp::MallocMessageBuilder message;
        auto artifacts = message.initRoot<capnp::JsonValue>();
        decodeJson(response.body, artifacts);
        KJ_REQUIRE(artifacts.isArray(), "artifact filter did not answer a list");
        for (auto artifact: artifacts.getArray()) {
          KJ_IF_MAYBE(metadata, member(artifact, "metadata_")) {
            if (text(*metadata, "tracer_artifact_id") == artifactId) {
              return kj::str(text(artifact, "id").c_str());
            }
          }
        }
        return nullptr;
      });
}

namespace {

// A live artifact's update (Prefect's ArtifactUpdate): its create body's
// data and description.
kj::String updateOf(const std::string& createBody) {
  capnp::MallocMessageBuilder message;
  auto created = message.initRoot<capnp::JsonValue>();
  capnp::JsonCodec codec;
  decodeJson(kj::StringPtr(createBody.c_str()), created);
  auto data = KJ_REQUIRE_NONNULL(member(created, "data"), "a live artifact without data");
  return kj::str("{\"data\":", codec.encodeRaw(data), ",\"description\":",
                 jsonQuoted(text(created, "description").c_str()), "}");
}

}  // namespace

kj::Promise<void> ArtifactDelivery::send(OutboxEntry entry) {
  outbox.markInFlight(entry.id);
  bool update = entry.live && !entry.prefectId.empty();
  auto sent = update ? api.patch(kj::str("/artifacts/", entry.prefectId.c_str()),
                                 updateOf(entry.body))
                     : api.post("/artifacts/", kj::str(entry.body.c_str()));
  return sent
      .then(
          [this, entry, update](ApiResponse response) {
            unsigned status = response.statusCode;
            if (status >= 200 && status < 300) {
              // A live artifact is updated where Prefect made it from now on.
              std::string prefectId;
              if (entry.live && !update) {
                capnp::MallocMessageBuilder message;
                auto made = message.initRoot<capnp::JsonValue>();
                decodeJson(response.body, made);
                prefectId = text(made, "id");
              }
              outbox.delivered(entry, prefectId);
              ++tally.delivered;
              restartsSinceDelivered = 0;
              log.debug(kj::str("artifact ", entry.key.c_str(), " delivered"),
                        {entry.flowRunId.c_str(), nullptr});
            } else if (status == 429 || status >= 500) {
              retry(entry, response.retryAfterSeconds, kj::str("HTTP ", status), true);
            } else {
              auto why = kj::str("HTTP ", status, ": ", response.body);
              outbox.park(entry.id, why.cStr());
              ++tally.parked;
              log.error(kj::str("artifact ", entry.key.c_str(), " refused by Prefect and parked: ",
                                why),
                        {entry.flowRunId.c_str(), nullptr});
            }
          },
          [this, entry](kj::Exception&& e) {
            // No answer: Prefect may or may not have stored it.
            retry(entry, nullptr, e.getDescription(), false);
          });
}

void ArtifactDelivery::renderMetrics(PrometheusText& out) {
  out.family("tracer_artifact_deliveries_total", "counter",
             "Artifact delivery attempts to Prefect, by result.");
  out.sample("tracer_artifact_deliveries_total", {{"result", "delivered"}}, tally.delivered);
  out.sample("tracer_artifact_deliveries_total", {{"result", "retried"}}, tally.retried);
  out.sample("tracer_artifact_deliveries_total", {{"result", "parked"}}, tally.parked);
  out.sample("tracer_artifact_deliveries_total", {{"result", "found_delivered"}},
             tally.foundDelivered);
  out.single("tracer_delivery_restarts_total", "counter",
             "Times artifact delivery stopped on an error (the outbox could not be written) "
             "and was started again after a backoff.", tally.restarts);
}

void ArtifactDelivery::fillStatus(proto::SidecarStatus::Builder status) const {
  status.setDeliveryRestarts(tally.restarts);
}

}  // namespace tracer
