#include "endpoint_name.h"

namespace tracer {

kj::String endpointName(proto::Endpoint::Reader endpoint) {
  auto address = endpoint.getAddress();
  bool v6 = address.findFirst(':') != nullptr;
  return kj::str(v6 ? "[" : "", address, v6 ? "]:" : ":", endpoint.getPort(),
                 endpoint.getListening() ? " (listening)" : "");
}

}  // namespace tracer
