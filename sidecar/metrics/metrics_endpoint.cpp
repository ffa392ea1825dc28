#include "metrics/metrics_endpoint.h"

#include "metrics/prometheus_text.h"

namespace tracer {

MetricsEndpoint::MetricsEndpoint(kj::Array<MetricsSource*> sources,
                                 const kj::HttpHeaderTable& headers)
    : sources(kj::mv(sources)), headerTable(headers) {}

kj::String MetricsEndpoint::render() {
  PrometheusText out;
  for (auto* source: sources) source->renderMetrics(out);
  return out.finish();
}

kj::Promise<void> MetricsEndpoint::request(kj::HttpMethod method, kj::StringPtr url,
                                           const kj::HttpHeaders& headers,
                                           kj::AsyncInputStream& body, Response& response) {
  if (method != kj::HttpMethod::GET || url != "/metrics") {
    return response.sendError(404, "Not Found", headerTable);
  }
  auto text = render();
  kj::HttpHeaders replyHeaders(headerTable);
  replyHeaders.set(kj::HttpHeaderId::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
  auto stream = response.send(200, "OK", replyHeaders, text.size());
  auto written = stream->write(text.begin(), text.size());
  return written.attach(kj::mv(stream), kj::mv(text));
}

}  // namespace tracer
