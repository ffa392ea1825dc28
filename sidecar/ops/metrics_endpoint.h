#pragma once
// GET /metrics: the sidecar itself in Prometheus text format (served on the
// event loop with kj::HttpServer): runs live and finished, connected clients,
// events lost, the artifact outbox by status, the policy reload state.
// Cardinality is bounded: no label takes a task or flow name.

#include <kj/compat/http.h>

#include "rpc/services.h"

namespace tracer {

class MetricsEndpoint final: public kj::HttpService {
 public:
  MetricsEndpoint(Services& services, const kj::HttpHeaderTable& headers);

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url,
                            const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                            Response& response) override;

  kj::String render();

 private:
  Services& services;
  const kj::HttpHeaderTable& headerTable;
};

}  // namespace tracer
