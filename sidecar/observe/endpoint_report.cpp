#include "observe/endpoint_report.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace tracer {

namespace {

constexpr unsigned short AF_INET_KERNEL = 2, AF_INET6_KERNEL = 10;

// The address as text; an IPv4-mapped IPv6 address (a dual-stack socket
// talking IPv4) as the IPv4 address it is.
kj::String addressText(const endpoint_key& key) {
  static const unsigned char MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char text[INET6_ADDRSTRLEN] = "";
  if (key.family == AF_INET_KERNEL) {
    inet_ntop(AF_INET, key.addr, text, sizeof(text));
  } else if (memcmp(key.addr, MAPPED, sizeof(MAPPED)) == 0) {
    inet_ntop(AF_INET, key.addr + sizeof(MAPPED), text, sizeof(text));
  } else if (key.family == AF_INET6_KERNEL) {
    inet_ntop(AF_INET6, key.addr, text, sizeof(text));
  }
  return kj::str(text);
}

uint64_t lessOrZero(uint64_t total, uint64_t part) { return total > part ? total - part : 0; }

}  // namespace

void describeEndpoint(const endpoint_key& key, proto::Endpoint::Builder out) {
  out.setAddress(addressText(key));
  out.setPort(key.port);
  out.setListening(key.listening != 0);
}

void fillEndpoints(proto::TaskReport::Builder report, const TaskTotals& totals) {
  kj::Vector<const EndpointTotals*> ranked;
  for (auto& endpoint: totals.endpoints) ranked.add(&endpoint);
  std::sort(ranked.begin(), ranked.end(), [](const EndpointTotals* a, const EndpointTotals* b) {
    if (a->use.wait_ns != b->use.wait_ns) return a->use.wait_ns > b->use.wait_ns;
    return a->use.tx_bytes + a->use.rx_bytes > b->use.tx_bytes + b->use.rx_bytes;
  });
  auto net = report.getNet();
  auto listed = net.initEndpoints(std::min(ranked.size(), REPORTED_ENDPOINTS));
  uint64_t waitNs = 0, txBytes = 0, rxBytes = 0;
  for (auto i: kj::indices(listed)) {
    const auto& e = *ranked[i];
    describeEndpoint(e.key, listed[i]);
    listed[i].setWaitNs(e.use.wait_ns);
    listed[i].setTxBytes(e.use.tx_bytes);
    listed[i].setRxBytes(e.use.rx_bytes);
    listed[i].setConnections(static_cast<uint32_t>(e.use.connections));
    waitNs += e.use.wait_ns;
    txBytes += e.use.tx_bytes;
    rxBytes += e.use.rx_bytes;
  }
  auto other = net.getOtherEndpoints();
  other.setWaitNs(lessOrZero(totals.kernel.sleep_by_cause_ns[SLEEP_NETWORK], waitNs));
  other.setTxBytes(lessOrZero(totals.kernel.tx_bytes, txBytes));
  other.setRxBytes(lessOrZero(totals.kernel.rx_bytes, rxBytes));
  other.setCount(static_cast<uint32_t>(ranked.size() - listed.size()));
  other.setUnlisted(totals.endpointsUnlisted);
}

}  // namespace tracer
