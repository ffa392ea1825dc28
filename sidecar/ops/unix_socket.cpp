#include "ops/unix_socket.h"

#include <kj/debug.h>
#include <fcntl.h>
#include <kj/io.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
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

kj::Maybe<kj::String> unsafeSocketDirectory(kj::StringPtr path) {
  makeParentDirectory(path);
  auto directory = kj::str(".");
  KJ_IF_MAYBE(slash, path.findLast('/')) {
    directory = *slash == 0 ? kj::str("/") : kj::str(path.slice(0, *slash));
  }
  struct stat info;
  if (stat(directory.cStr(), &info) != 0) {
    return kj::str("cannot read its directory ", directory, ": ", strerror(errno));
  }
  bool othersOwn = info.st_uid != 0 && info.st_uid != geteuid();
  bool othersWrite = (info.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (info.st_mode & S_ISVTX) == 0;
  if (othersOwn || othersWrite) {
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", unsigned(info.st_mode & 07777));
    return kj::str("its directory ", directory, " can be changed by others (owner uid ",
                   info.st_uid, ", mode ", mode,
                   "): use one only root can write to, or a sticky one");
  }
  return nullptr;
}

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
  // By path, but never through a link: the directory is ours (see
  // unsafeSocketDirectory), and a link put there anyway is changed itself.
  KJ_IF_MAYBE(gid, group) {
    KJ_SYSCALL(fchownat(AT_FDCWD, path.cStr(), -1, *gid, AT_SYMLINK_NOFOLLOW), path);
  }
  KJ_SYSCALL(listen(fd, SOMAXCONN));
  receiver = io.wrapListenSocketFd(kj::mv(owned));
}

ListeningSocket::~ListeningSocket() noexcept(false) { unlink(path.cStr()); }

}  // namespace tracer
