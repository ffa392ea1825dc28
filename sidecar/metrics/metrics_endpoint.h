#pragma once
// GET /metrics: the sidecar itself in Prometheus text format (served on the
// event loop with kj::HttpServer): runs live and finished, what the kernel
// observer tracks and loses, RPC calls and their latency, the artifact outbox
// and its deliveries, policy reloads, and totals per (flow, task) name.
// Cardinality is bounded: run ids are never labels, names are capped. A
// scrape within RENDER_EVERY of the last one gets the same text: rendering
// reads every source (and the history's and outbox's counts), and scrapes
// come from anyone who can reach the port.

#include <kj/compat/http.h>
#include <kj/time.h>

#include "metrics/metrics_source.h"

namespace tracer {

class MetricsEndpoint final: public kj::HttpService {
 public:
  static constexpr kj::Duration RENDER_EVERY = 1 * kj::SECONDS;

  // Rendered in this order.
  MetricsEndpoint(kj::Array<MetricsSource*> sources, const kj::HttpHeaderTable& headers,
                  const kj::MonotonicClock& clock);

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url,
                            const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                            Response& response) override;

  // What a scrape now gets: the last text, or a new one once it is
  // RENDER_EVERY old. Counts how often each happened.
  kj::StringPtr scrape();

 private:
  kj::String render();

  kj::Array<MetricsSource*> sources;
  const kj::HttpHeaderTable& headerTable;
  const kj::MonotonicClock& clock;
  kj::String rendered;
  kj::Maybe<kj::TimePoint> renderedAt;
  uint64_t renders = 0, cachedScrapes = 0;
};

}  // namespace tracer
