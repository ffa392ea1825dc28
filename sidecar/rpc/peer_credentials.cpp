#include "rpc/peer_credentials.h"

#include <kj/debug.h>
#include <sys/socket.h>
#include <sys/stat.h>

namespace tracer {

namespace {

kj::Maybe<ino_t> pidNamespaceOf(kj::StringPtr procEntry) {
  struct stat info;
  if (stat(kj::str("/proc/", procEntry, "/ns/pid").cStr(), &info) != 0) return nullptr;
  return info.st_ino;
}

}  // namespace

kj::String PeerCredentials::describe() const {
  return kj::str("pid ", pid, " uid ", uid);
}

PeerCredentials peerCredentialsOf(kj::AsyncIoStream& stream) {
  struct ucred cred;
  uint length = sizeof(cred);
  stream.getsockopt(SOL_SOCKET, SO_PEERCRED, &cred, &length);
  KJ_REQUIRE(length == sizeof(cred), "SO_PEERCRED returned a short answer");
  auto ours = pidNamespaceOf("self");
  auto theirs = pidNamespaceOf(kj::str(cred.pid));
  bool same = false;
  KJ_IF_MAYBE(a, ours) {
    KJ_IF_MAYBE(b, theirs) { same = *a == *b; }
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid, same};
}

}  // namespace tracer
