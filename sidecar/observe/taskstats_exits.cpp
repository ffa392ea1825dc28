#include "observe/taskstats_exits.h"

#include <errno.h>
#include <fcntl.h>
#include <kj/debug.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "observe/taskstats_netlink.h"
#include "proc_files.h"

namespace tracer {

namespace {

// Room for a burst of exits while the event loop is busy: each record is
// 0.4-0.6 KiB, so this holds some 10,000.
constexpr int RECEIVE_BUFFER_BYTES = 8 << 20;

kj::Maybe<ExitRecord> parseMessage(const nlmsghdr* message) {
  KJ_IF_MAYBE(stats, threadRecordIn(message)) {
    if (!laidOutAsOurs(*stats)) return nullptr;
    ExitRecord record;
    record.pid = stats->ac_pid;
    record.ppid = stats->ac_ppid;
    record.tgid = stats->version >= 12 ? stats->ac_tgid : 0;
    record.cpuNs = stats->cpu_run_virtual_total;
    record.utimeNs = stats->ac_utime * 1000;
    record.stimeNs = stats->ac_stime * 1000;
    record.runDelayNs = stats->cpu_delay_total;
    record.rchar = stats->read_char;
    record.wchar = stats->write_char;
    record.readBytes = stats->read_bytes;
    record.writeBytes = stats->write_bytes;
    record.peakRssBytes = stats->hiwater_rss * 1024;
    return record;
  }
  return nullptr;
}

}  // namespace

kj::OneOf<kj::Own<TaskstatsExits>, kj::String> TaskstatsExits::open(kj::UnixEventPort& events) {
  auto opened = openTaskstatsSocket();
  if (opened.is<kj::String>()) return kj::str("taskstats: ", opened.get<kj::String>());
  auto& socket = opened.get<TaskstatsSocket>();
  kj::AutoCloseFd owned = kj::mv(socket.fd);
  uint16_t family = socket.family;
  int fd = owned.get();
  int bytes = RECEIVE_BUFFER_BYTES;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  }

  // Our own record first: it says which layout the kernel speaks, and whether
  // it fills the exact CPU time (delay accounting compiled in).
  auto query = taskstatsRequest(family, TASKSTATS_CMD_GET);
  uint32_t self = getpid();
  addTaskstatsAttribute(query, TASKSTATS_CMD_ATTR_PID, &self, sizeof(self));
  kj::Maybe<ExitRecord> own;
  uint16_t version = 0;
  KJ_IF_MAYBE(error, exchangeTaskstats(fd, query, [&](const nlmsghdr* m) {
    KJ_IF_MAYBE(record, threadRecordIn(m)) { version = record->version; }
    own = parseMessage(m);
  })) {
    return kj::str("taskstats: the kernel refused a query (", *error,
                   "; needs root in the initial user and PID namespaces)");
  }
  if (version == MISLAID_TASKSTATS_VERSION) {
    return kj::str("taskstats: version 15's record layout is not supported (Linux 6.16; fixed "
                   "in 6.17 as version 16)");
  }
  KJ_IF_MAYBE(record, own) {
    if (record->cpuNs == 0) {
      return kj::str("taskstats: the kernel leaves exact CPU time out (no delay accounting)");
    }
  } else {
    return kj::str("taskstats: no per-thread record in the kernel's answer");
  }

  kj::String cpus = kj::str("0");
  KJ_IF_MAYBE(possible, readProcFile("/sys/devices/system/cpu/possible")) {
    cpus = kj::str(possible->asPtr().slice(0, strcspn(possible->cStr(), "\n")));
  }
  auto subscribe = taskstatsRequest(family, TASKSTATS_CMD_GET);
  addTaskstatsAttribute(subscribe, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpus.cStr(),
                        cpus.size() + 1);
  KJ_IF_MAYBE(error, exchangeTaskstats(fd, subscribe, [](const nlmsghdr*) {})) {
    return kj::str("taskstats: cannot register for exit records of CPUs ", cpus, ": ", *error);
  }
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  return kj::heap<TaskstatsExits>(events, kj::mv(owned), family, kj::mv(cpus), version);
}

TaskstatsExits::TaskstatsExits(kj::UnixEventPort& events, kj::AutoCloseFd fd, uint16_t family,
                               kj::String cpus, uint16_t version)
    : fd(kj::mv(fd)),
      family(family),
      cpus(kj::mv(cpus)),
      kernelVersion(version),
      observer(events, this->fd.get(), kj::UnixEventPort::FdObserver::OBSERVE_READ) {}

TaskstatsExits::~TaskstatsExits() noexcept(false) {
  // The kernel forgets a closed listener only when a send to it fails: say so.
  auto r = taskstatsRequest(family, TASKSTATS_CMD_GET);
  r.header.nlmsg_flags = NLM_F_REQUEST;
  addTaskstatsAttribute(r, TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, cpus.cStr(), cpus.size() + 1);
  send(fd.get(), &r, r.header.nlmsg_len, MSG_DONTWAIT);
}

kj::Promise<void> TaskstatsExits::whenReadable() { return observer.whenBecomesReadable(); }

bool TaskstatsExits::drain(kj::FunctionParam<void(const ExitRecord&)> each) {
  bool complete = true;
  char buffer[65536];
  for (;;) {
    ssize_t got = recv(fd.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // the kernel dropped records: said, then read on
        complete = false;
        continue;
      }
      return complete;  // EAGAIN: nothing more queued
    }
    size_t left = got;
    for (auto* m = reinterpret_cast<const nlmsghdr*>(buffer); NLMSG_OK(m, left);
         m = NLMSG_NEXT(m, left)) {
      if (m->nlmsg_type != family) continue;
      KJ_IF_MAYBE(record, parseMessage(m)) {
        ++read;
        each(*record);
      }
    }
  }
}

}  // namespace tracer
