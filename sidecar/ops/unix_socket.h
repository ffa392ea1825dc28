#pragma once
// The sidecar's listening socket when systemd did not pass one: a Unix stream
// socket at PATH, mode 0660, optionally group-owned so a non-root Prefect worker
// group can connect. A stale socket file (no sidecar answers on it) is replaced;
// a live one means another sidecar is running, which is refused.

#include <kj/async-io.h>
#include <sys/types.h>

namespace tracer {

class ListeningSocket {
 public:
  ListeningSocket(kj::LowLevelAsyncIoProvider& io, kj::StringPtr path, kj::Maybe<gid_t> group);
  ~ListeningSocket() noexcept(false);  // removes the socket file
  KJ_DISALLOW_COPY(ListeningSocket);

  kj::Own<kj::ConnectionReceiver> takeReceiver() { return kj::mv(receiver); }

 private:
  kj::String path;
  kj::Own<kj::ConnectionReceiver> receiver;
};

}  // namespace tracer
