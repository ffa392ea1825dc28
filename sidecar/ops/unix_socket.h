#pragma once
// The sidecar's listening socket when systemd did not pass one: a Unix stream
// socket at PATH, mode 0660, optionally group-owned so a non-root Prefect worker
// group can connect. A stale socket file (no sidecar answers on it) is replaced;
// a live one means another sidecar is running, which is refused.
//
// Its directory must be one only root (or the sidecar's user) can change, or
// sticky: where others may rename files in it, the socket could be swapped
// for a link between bind() and chown(), and the sidecar would hand a file
// of their choosing to the socket's group.

#include <kj/async-io.h>
#include <sys/types.h>

namespace tracer {

// Why the socket may not be made at `path` (its directory is writable by
// others and not sticky), or nullptr if it may. Its directory is made first.
kj::Maybe<kj::String> unsafeSocketDirectory(kj::StringPtr path);

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
