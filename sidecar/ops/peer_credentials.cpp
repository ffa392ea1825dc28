#include "ops/peer_credentials.h"

#include <kj/debug.h>
#include <sys/socket.h>
#include <sys/stat.h>

namespace tracer {

namespace {

#ifndef SO_PEERPIDFD
constexpr int SO_PEERPIDFD = 77;  // Linux 6.5; newer than Debian 12's headers
#endif

// 0 when /proc does not say (the process is gone, or not ours to inspect).
ino_t pidNamespaceOf(kj::StringPtr procEntry) {
  struct stat info;
  if (stat(kj::str("/proc/", procEntry, "/ns/pid").cStr(), &info) != 0) return 0;
  return info.st_ino;
}

std::vector<gid_t> peerGroups(kj::AsyncIoStream& stream) {
  std::vector<gid_t> groups(64);
  for (;;) {
    uint length = groups.size() * sizeof(gid_t);
    try {
      stream.getsockopt(SOL_SOCKET, SO_PEERGROUPS, groups.data(), &length);
      groups.resize(length / sizeof(gid_t));
      return groups;
    } catch (const kj::Exception&) {
      // ERANGE: the kernel wrote the size it needs into `length`.
      if (length <= groups.size() * sizeof(gid_t)) throw;
      groups.resize(length / sizeof(gid_t));
    }
  }
}

kj::AutoCloseFd peerPidfd(kj::AsyncIoStream& stream) {
  int fd = -1;
  uint length = sizeof(fd);
  try {
    stream.getsockopt(SOL_SOCKET, SO_PEERPIDFD, &fd, &length);
  } catch (const kj::Exception&) {
    return kj::AutoCloseFd();  // older kernel: the pid checks fall back to /proc alone
  }
  return kj::AutoCloseFd(fd);
}

}  // namespace

kj::String PeerCredentials::describe() const {
  return kj::str("pid ", pid, " uid ", uid);
}

PeerIdentity peerIdentityOf(kj::AsyncIoStream& stream) {
  struct ucred cred;
  uint length = sizeof(cred);
  stream.getsockopt(SOL_SOCKET, SO_PEERCRED, &cred, &length);
  KJ_REQUIRE(length == sizeof(cred), "SO_PEERCRED returned a short answer");
  ino_t ours = pidNamespaceOf("self");
  ino_t theirs = pidNamespaceOf(kj::str(cred.pid));
  bool same = ours != 0 && ours == theirs;
  return PeerIdentity{PeerCredentials{cred.pid, cred.uid, cred.gid, same, theirs},
                      peerGroups(stream), peerPidfd(stream)};
}

}  // namespace tracer
