#pragma once
// Delivers the outbox to Prefect, one artifact at a time, on the event loop.
// 2xx: delivered. Network errors, timeouts, 5xx and 429 (honouring
// Retry-After): retried with exponential backoff and jitter. Any other 4xx:
// parked with Prefect's answer logged (tracerctl outbox --retry-parked puts it
// back in line). Exactly one version per artifact in Prefect: an attempt that
// got no answer (a crash, a timeout) is followed by a check (/artifacts/filter
// on its key and flow run, looking for its metadata_.tracer_artifact_id)
// before the artifact is sent again.

#include <kj/async.h>
#include <kj/timer.h>

#include "ops/log.h"
#include "metrics/metrics_source.h"
#include "metrics/status_part.h"
#include "prefect/api_client.h"
#include "prefect/retry_backoff.h"
#include "store/outbox.h"

namespace tracer {

class ArtifactDelivery final: public MetricsSource, public StatusPart {
 public:
  ArtifactDelivery(Log& log, Outbox& outbox, kj::Timer& timer, PrefectApi& api);

  // Never resolves: an error that stops delivery (the outbox cannot be
  // written: a full disk) is logged and counted, and delivery starts again
  // after a backoff (RetryBackoff, by the restarts since one was delivered).
  kj::Promise<void> run();
  void wake();  // something new is in the outbox
  bool hasDue();  // an artifact is waiting to be sent now (or being sent)

  struct Counts {
    uint64_t delivered = 0;
    uint64_t retried = 0;         // 429, 5xx, network errors
    uint64_t parked = 0;          // refused by Prefect
    uint64_t foundDelivered = 0;  // an unanswered attempt had in fact been stored
    uint64_t restarts = 0;        // delivery stopped on an error and started again
  };
  const Counts& counts() const { return tally; }
  // Delivery attempts by result, and restarts.
  void renderMetrics(PrometheusText& out) override;
  void fillStatus(proto::SidecarStatus::Builder status) const override;

 private:
  kj::Promise<void> loop();
  kj::Promise<void> deliver(OutboxEntry entry);
  kj::Promise<kj::Maybe<kj::String>> alreadyStored(const OutboxEntry& entry);
  kj::Promise<void> send(OutboxEntry entry);
  void retry(const OutboxEntry& entry, kj::Maybe<uint64_t> notBeforeSeconds, kj::StringPtr why,
             bool answered);

  Log& log;
  Outbox& outbox;
  kj::Timer& timer;
  PrefectApi& api;
  RetryBackoff backoff;
  uint32_t restartsSinceDelivered = 0;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> woken;
  Counts tally;
};

}  // namespace tracer
