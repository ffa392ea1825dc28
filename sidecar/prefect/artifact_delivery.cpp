#include "prefect/artifact_delivery.h"

#include <kj/debug.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

namespace tracer {

namespace {

constexpr int64_t FIRST_RETRY_NS = 1000000000;       // 1 s
constexpr int64_t LONGEST_RETRY_NS = 60 * 1000000000ll;

int64_t realtimeNs() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return int64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
}

}  // namespace

ArtifactDelivery::ArtifactDelivery(Log& log, Outbox& outbox, kj::Timer& timer,
                                   PrefectApiClient& api)
    : log(log), outbox(outbox), timer(timer), api(api) {}

void ArtifactDelivery::wake() {
  KJ_IF_MAYBE(fulfiller, woken) { (*fulfiller)->fulfill(); }
  woken = nullptr;
}

kj::Promise<void> ArtifactDelivery::run() {
  auto due = outbox.due(realtimeNs(), 1);
  if (!due.empty()) {
    return deliver(kj::mv(due[0])).then([this]() { return run(); });
  }
  auto wakeUp = kj::newPromiseAndFulfiller<void>();
  woken = kj::mv(wakeUp.fulfiller);
  kj::Promise<void> next = kj::mv(wakeUp.promise);
  if (auto at = outbox.nextAttemptNs()) {
    int64_t wait = std::max<int64_t>(0, *at - realtimeNs());
    next = next.exclusiveJoin(timer.afterDelay(wait * kj::NANOSECONDS));
  }
  return next.then([this]() { return run(); });
}

void ArtifactDelivery::retry(const OutboxEntry& entry, kj::Maybe<uint64_t> notBeforeSeconds,
                             kj::StringPtr why) {
  int64_t backoff = std::min(LONGEST_RETRY_NS, FIRST_RETRY_NS << std::min<uint32_t>(entry.attempts, 6));
  backoff = backoff / 2 + (rand() % (backoff / 2 + 1));  // jitter: between half and all of it
  KJ_IF_MAYBE(seconds, notBeforeSeconds) {
    backoff = std::max<int64_t>(backoff, int64_t(*seconds) * 1000000000);
  }
  outbox.retryLater(entry.id, realtimeNs() + backoff, why.cStr());
  log.warn(kj::str("artifact ", entry.key.c_str(), " not delivered (", why, "); retrying in ",
                   backoff / 1000000, " ms"));
}

kj::Promise<void> ArtifactDelivery::deliver(OutboxEntry entry) {
  auto body = kj::str(entry.body.c_str());
  return api.post("/artifacts/", kj::mv(body))
      .then(
          [this, entry](ApiResponse response) {
            unsigned status = response.statusCode;
            if (status >= 200 && status < 300) {
              outbox.delivered(entry.id);
              log.debug(kj::str("artifact ", entry.key.c_str(), " delivered"));
            } else if (status == 429 || status >= 500) {
              retry(entry, response.retryAfterSeconds, kj::str("HTTP ", status));
            } else {
              auto why = kj::str("HTTP ", status, ": ", response.body);
              outbox.park(entry.id, why.cStr());
              log.error(kj::str("artifact ", entry.key.c_str(), " refused by Prefect and parked: ",
                                why));
            }
          },
          [this, entry](kj::Exception&& e) {
            retry(entry, nullptr, e.getDescription());
          });
}

}  // namespace tracer
