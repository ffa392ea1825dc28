#pragma once
// Who is at the other end of a Unix socket connection, as the kernel says
// (SO_PEERCRED, SO_PEERGROUPS, SO_PEERPIDFD), captured once when the
// connection is accepted, before the client has sent a byte.

#include <kj/async-io.h>
#include <kj/io.h>
#include <sys/types.h>

#include <vector>

namespace tracer {

struct PeerCredentials {
  pid_t pid;  // in the sidecar's (host) PID namespace
  uid_t uid;
  gid_t gid;
  bool sameNamespaceAsSidecar;  // the caller's pids mean the same as ours
  ino_t pidNamespace = 0;  // its inode; 0 when /proc would not say

  bool isRoot() const { return uid == 0; }
  kj::String describe() const;
};

struct PeerIdentity {
  PeerCredentials credentials;
  std::vector<gid_t> groups;  // supplementary groups at connect time
  // The connecting process itself, immune to pid reuse; -1 when the kernel has
  // no SO_PEERPIDFD (before 6.5).
  kj::AutoCloseFd pidfd;
};

PeerIdentity peerIdentityOf(kj::AsyncIoStream& stream);

}  // namespace tracer
