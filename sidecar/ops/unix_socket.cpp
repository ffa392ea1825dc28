#include "ops/unix_socket.h"

#include <kj/debug.h>
#include <kj/io.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace tracer {

namespace {

sockaddr_un addressOf(kj::StringPtr path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  KJ_REQUIRE(path.size() < sizeof(address.sun_path), "socket path too long", path);
  memcpy(address.sun_path, path.begin(), path.size());
  return address;
}

// True when something accepts connections on `path`.
bool someoneListens(kj::StringPtr path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  KJ_SYSCALL(fd);
  KJ_DEFER(close(fd));
  auto address = addressOf(path);
  return connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
}

void makeParentDirectory(kj::StringPtr path) {
  auto slash = path.findLast('/');
  KJ_IF_MAYBE(position, slash) {
    if (*position == 0) return;
    auto parent = kj::str(path.slice(0, *position));
    makeParentDirectory(parent);
    if (mkdir(parent.cStr(), 0755) != 0 && errno != EEXIST) {
      KJ_FAIL_SYSCALL("mkdir", errno, parent);
    }
  }
}

}  // namespace

ListeningSocket::ListeningSocket(kj::LowLevelAsyncIoProvider& io, kj::StringPtr pathIn,
                                 kj::Maybe<gid_t> group)
    : path(kj::str(pathIn)) {
  makeParentDirectory(path);
  struct stat existing;
  if (lstat(path.cStr(), &existing) == 0) {
    KJ_REQUIRE(S_ISSOCK(existing.st_mode), "refusing to replace a file that is not a socket",
               path);
    KJ_REQUIRE(!someoneListens(path), "another tracer-sidecar is already serving this socket",
               path);
    KJ_SYSCALL(unlink(path.cStr()), path);
  }

  int fd;
  KJ_SYSCALL(fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  kj::AutoCloseFd owned(fd);
  auto address = addressOf(path);
  // bind() creates the file with the umask applied: make it 0660 from the start,
  // so there is no moment where it is more open than that.
  mode_t previous = umask(0117);
  int bound = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  int bindErrno = errno;
  umask(previous);
  if (bound != 0) KJ_FAIL_SYSCALL("bind", bindErrno, path);
  KJ_SYSCALL(chmod(path.cStr(), 0660), path);
  KJ_IF_MAYBE(gid, group) { KJ_SYSCALL(chown(path.cStr(), -1, *gid), path); }
  KJ_SYSCALL(listen(fd, SOMAXCONN));
  receiver = io.wrapListenSocketFd(kj::mv(owned));
}

ListeningSocket::~ListeningSocket() noexcept(false) { unlink(path.cStr()); }

}  // namespace tracer
