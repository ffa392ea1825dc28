#pragma once
// Delivers the outbox to Prefect, one artifact at a time, on the event loop.
// 2xx: delivered. Network errors, timeouts, 5xx and 429 (honouring
// Retry-After): retried with exponential backoff and jitter. Any other 4xx:
// parked with Prefect's answer logged (tracerctl outbox --retry-parked puts it
// back in line). At least once: a crash after Prefect stored an artifact but
// before the outbox recorded it sends that artifact again, adding one version.

#include <kj/async.h>
#include <kj/timer.h>

#include "ops/log.h"
#include "prefect/api_client.h"
#include "store/outbox.h"

namespace tracer {

class ArtifactDelivery {
 public:
  ArtifactDelivery(Log& log, Outbox& outbox, kj::Timer& timer, PrefectApiClient& api);

  kj::Promise<void> run();
  void wake();  // something new is in the outbox

 private:
  kj::Promise<void> deliver(OutboxEntry entry);
  void retry(const OutboxEntry& entry, kj::Maybe<uint64_t> notBeforeSeconds, kj::StringPtr why);

  Log& log;
  Outbox& outbox;
  kj::Timer& timer;
  PrefectApiClient& api;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> woken;
};

}  // namespace tracer
