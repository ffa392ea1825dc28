#include "ops/systemd.h"

#include <kj/debug.h>
#include <systemd/sd-daemon.h>

namespace tracer {

kj::Maybe<int> socketFromSystemd() {
  int count = sd_listen_fds(/*unset_environment=*/1);
  KJ_REQUIRE(count >= 0, "sd_listen_fds failed", strerror(-count));
  if (count == 0) return nullptr;
  KJ_REQUIRE(count == 1, "socket activation passed several sockets; expected exactly one", count);
  int fd = SD_LISTEN_FDS_START;
  KJ_REQUIRE(sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) > 0,
             "the socket passed by systemd is not a listening Unix stream socket");
  return fd;
}

void notifySystemd(kj::StringPtr state) { sd_notify(0, state.cStr()); }

}  // namespace tracer

namespace tracer {

kj::Maybe<kj::Duration> watchdogInterval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(/*unset_environment=*/0, &usec) <= 0 || usec == 0) return nullptr;
  return static_cast<int64_t>(usec / 2) * kj::MICROSECONDS;
}

}  // namespace tracer
