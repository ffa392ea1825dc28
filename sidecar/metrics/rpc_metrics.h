#pragma once
// How the RPC interface is used: calls served per method and how long the
// sidecar took to serve them (a histogram), connections refused by the access
// policy, and clients slowed down by their call-rate limit. Every capability
// server derives from MeasuredServer<Interface>, so no method goes uncounted;
// method names come from the schema, so the label set is the schema's methods.

#include <capnp/capability.h>
#include <capnp/schema.h>
#include <kj/time.h>

#include <array>
#include <map>
#include <string>
#include <utility>

#include "metrics/metrics_source.h"

namespace tracer {

class RpcMetrics final: public MetricsSource {
 public:
  explicit RpcMetrics(const kj::MonotonicClock& clock): clock(clock) {}

  const kj::MonotonicClock& clock;
  uint64_t refusedConnections = 0;
  uint64_t connectionsOverCap = 0;  // refused: over --max-connections or its per-uid share
  uint64_t acceptErrors = 0;        // accept() failed (out of descriptors, memory)
  uint64_t throttledConnections = 0;  // connections that hit their call-rate limit
  uint64_t throttledWaits = 0;        // times reading a client was paused for its rate
  uint64_t wedgedHangups = 0;         // clients that stopped reading or finishing answers

  void recordCall(capnp::InterfaceSchema schema, uint16_t methodId, kj::Duration took,
                  bool failed);
  void renderMetrics(PrometheusText& out) override;

 private:
  // Upper bounds in seconds. Our handlers are synchronous, so they are short.
  static constexpr std::array<double, 11> BUCKETS = {
      5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 1e-1};

  struct Method {
    std::string name;  // "Interface.method"
    uint64_t ok = 0;
    uint64_t failed = 0;
    std::array<uint64_t, BUCKETS.size()> buckets{};  // non-cumulative here
    double sumSeconds = 0;
  };
  std::map<std::pair<uint64_t, uint16_t>, Method> methods;  // by interface id, method id
};

template <typename Interface>
class MeasuredServer: public Interface::Server {
 public:
  explicit MeasuredServer(RpcMetrics& metrics): metrics(metrics) {}

  capnp::Capability::Server::DispatchCallResult dispatchCall(
      uint64_t interfaceId, uint16_t methodId,
      capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer> context) override {
    auto schema = capnp::Schema::from<Interface>();
    auto started = metrics.clock.now();
    try {
      auto result = Interface::Server::dispatchCall(interfaceId, methodId, context);
      if (interfaceId == schema.getProto().getId()) {
        metrics.recordCall(schema, methodId, metrics.clock.now() - started, false);
      }
      return result;
    } catch (...) {
      if (interfaceId == schema.getProto().getId()) {
        metrics.recordCall(schema, methodId, metrics.clock.now() - started, true);
      }
      throw;
    }
  }

 protected:
  RpcMetrics& metrics;
};

}  // namespace tracer
