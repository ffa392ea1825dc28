// A task's endpoints in its report: the longest waits listed first, at most
// REPORTED_ENDPOINTS, the rest in other_endpoints with what the totals hold
// beyond the listed ones; addresses written as a person reads them.
#include <arpa/inet.h>
#include <capnp/message.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "endpoint_name.h"
#include "observe/endpoint_report.h"

using namespace tracer;

namespace {

EndpointTotals endpoint(int family, const char* address, uint16_t port, uint64_t waitNs,
                        uint64_t txBytes = 0, bool listening = false) {
  EndpointTotals e{};
  e.key.family = family == AF_INET ? 2 : 10;
  e.key.port = port;
  e.key.listening = listening;
  REQUIRE(inet_pton(family, address, e.key.addr) == 1);
  e.use.wait_ns = waitNs;
  e.use.tx_bytes = txBytes;
  e.use.connections = 1;
  return e;
}

}  // namespace

TEST_CASE("the endpoints waited on longest are listed, the rest is other, none is counted twice") {
  TaskTotals totals;
  for (uint16_t i = 0; i < 12; ++i) {
    totals.endpoints.add(endpoint(AF_INET, "10.0.3.7", 5000 + i, 1000 * (i + 1), 10));
  }
  totals.endpoints.add(endpoint(AF_INET6, "2001:db8::1", 443, 50000, 7));
  totals.endpoints.add(endpoint(AF_INET6, "::ffff:192.0.2.9", 53, 40000));
  totals.endpoints.add(endpoint(AF_INET, "0.0.0.0", 8080, 0, 0, true));
  totals.kernel.sleep_by_cause_ns[SLEEP_NETWORK] = 200000;  // 12 ms of it on unconnected sockets
  totals.kernel.tx_bytes = 500;
  totals.endpointsUnlisted = true;

  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<proto::TaskReport>();
  fillEndpoints(report, totals);
  auto net = report.asReader().getNet();
  auto listed = net.getEndpoints();
  REQUIRE(listed.size() == REPORTED_ENDPOINTS);
  CHECK(endpointName(listed[0]) == "[2001:db8::1]:443");
  CHECK(listed[0].getWaitNs() == 50000);
  CHECK(listed[0].getTxBytes() == 7);
  CHECK(endpointName(listed[1]) == "192.0.2.9:53");  // IPv4-mapped, written as IPv4
  CHECK(endpointName(listed[2]) == "10.0.3.7:5011");
  CHECK(endpointName(listed[9]) == "10.0.3.7:5004");
  CHECK(listed[2].getConnections() == 1);
  uint64_t listedWait = 0, listedTx = 0;
  for (auto e: listed) listedWait += e.getWaitNs(), listedTx += e.getTxBytes();
  auto other = net.getOtherEndpoints();
  CHECK(other.getCount() == 5);
  CHECK(other.getUnlisted());
  CHECK(other.getWaitNs() == 200000 - listedWait);
  CHECK(other.getTxBytes() == 500 - listedTx);
}

TEST_CASE("a listening socket is its own address, marked") {
  TaskTotals totals;
  totals.endpoints.add(endpoint(AF_INET, "0.0.0.0", 8080, 5, 0, true));
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<proto::TaskReport>();
  fillEndpoints(report, totals);
  auto only = report.asReader().getNet().getEndpoints()[0];
  CHECK(only.getListening());
  CHECK(endpointName(only) == "0.0.0.0:8080 (listening)");
  // Totals below the listed ones (a late registration) are never a negative other.
  CHECK(report.asReader().getNet().getOtherEndpoints().getWaitNs() == 0);
}
