#pragma once
// Who is at the other end of a Unix socket connection, as the kernel says
// (SO_PEERCRED), captured once when the connection is accepted.

#include <kj/async-io.h>
#include <sys/types.h>

namespace tracer {

struct PeerCredentials {
  pid_t pid;  // in the sidecar's (host) PID namespace
  uid_t uid;
  gid_t gid;
  bool sameNamespaceAsSidecar;  // the caller's pids mean the same as ours

  bool isRoot() const { return uid == 0; }
  kj::String describe() const;
};

PeerCredentials peerCredentialsOf(kj::AsyncIoStream& stream);

}  // namespace tracer
