#include "metrics/metrics_endpoint.h"

#include "metrics/prometheus_text.h"

namespace tracer {

MetricsEndpoint::MetricsEndpoint(kj::Array<MetricsSource*> sources,
                                 const kj::HttpHeaderTable& headers,
                                 const kj::MonotonicClock& clock)
    : sources(kj::mv(sources)), headerTable(headers), clock(clock) {}

kj::String MetricsEndpoint::render() {
  PrometheusText out;
  for (auto* source: sources) source->renderMetrics(out);
  out.family("tracer_metrics_scrapes_total", "counter",
             "Scrapes of /metrics, by whether the text was rendered or the last one served "
             "(within 1 s of it).");
  out.sample("tracer_metrics_scrapes_total", {{"served", "rendered"}}, renders);
  out.sample("tracer_metrics_scrapes_total", {{"served", "cached"}}, cachedScrapes);
  return out.finish();
}

kj::StringPtr MetricsEndpoint::scrape() {
  auto now = clock.now();
  KJ_IF_MAYBE(at, renderedAt) {
    if (now - *at < RENDER_EVERY) {
      ++cachedScrapes;
      return rendered;
    }
  }
  ++renders;
  rendered = render();
  renderedAt = now;
  return rendered;
}

kj::Promise<void> MetricsEndpoint::request(kj::HttpMethod method, kj::StringPtr url,
                                           const kj::HttpHeaders& headers,
                                           kj::AsyncInputStream& body, Response& response) {
  if (method != kj::HttpMethod::GET || url != "/metrics") {
    return response.sendError(404, "Not Found", headerTable);
  }
  auto text = kj::str(scrape());  // its own copy: the next render may replace the last
  kj::HttpHeaders replyHeaders(headerTable);
  replyHeaders.set(kj::HttpHeaderId::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
  auto stream = response.send(200, "OK", replyHeaders, text.size());
  auto written = stream->write(text.begin(), text.size());
  return written.attach(kj::mv(stream), kj::mv(text));
}

}  // namespace tracer
