#pragma once
// GET /metrics: the sidecar itself in Prometheus text format (served on the
// event loop with kj::HttpServer): runs live and finished, what the kernel
// observer tracks and loses, RPC calls and their latency, the artifact outbox
// and its deliveries, policy reloads, and totals per (flow, task) name.
// Cardinality is bounded: run ids are never labels, names are capped.

#include <kj/compat/http.h>

#include "metrics/metrics_source.h"

namespace tracer {

class MetricsEndpoint final: public kj::HttpService {
 public:
  // Rendered in this order on each scrape.
  MetricsEndpoint(kj::Array<MetricsSource*> sources, const kj::HttpHeaderTable& headers);

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url,
                            const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                            Response& response) override;

  kj::String render();

 private:
  kj::Array<MetricsSource*> sources;
  const kj::HttpHeaderTable& headerTable;
};

}  // namespace tracer
