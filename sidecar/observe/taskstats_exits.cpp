#include "observe/taskstats_exits.h"

#include <errno.h>
#include <fcntl.h>
#include <kj/debug.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proc_files.h"

namespace tracer {

namespace {

// Room for a burst of exits while the event loop is busy: each record is
// 0.4-0.6 KiB, so this holds some 10,000.
constexpr int RECEIVE_BUFFER_BYTES = 8 << 20;
// Version 15 inserted fields in the middle of struct taskstats (Linux 6.16
// only; version 16 moved them to its end): its offsets are not ours.
constexpr uint16_t MISLAID_VERSION = 15;

struct Request {
  nlmsghdr header;
  genlmsghdr genl;
  char attributes[256];
};

void addAttribute(Request& request, uint16_t type, const void* data, size_t size) {
  auto* attribute = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(&request) +
                                              NLMSG_ALIGN(request.header.nlmsg_len));
  attribute->nla_type = type;
  attribute->nla_len = NLA_HDRLEN + size;
  memcpy(reinterpret_cast<char*>(attribute) + NLA_HDRLEN, data, size);
  request.header.nlmsg_len = NLMSG_ALIGN(request.header.nlmsg_len) + NLA_ALIGN(attribute->nla_len);
}

Request request(uint16_t family, uint8_t command) {
  Request r{};
  r.header.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
  r.header.nlmsg_type = family;
  r.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  r.genl.cmd = command;
  r.genl.version = 1;
  return r;
}

// Calls `each` with every attribute in [data, data + size).
template <typename Each>
void forAttributes(const char* data, size_t size, Each&& each) {
  while (size >= NLA_HDRLEN) {
    auto* attribute = reinterpret_cast<const nlattr*>(data);
    if (attribute->nla_len < NLA_HDRLEN || attribute->nla_len > size) return;
    each(attribute->nla_type & NLA_TYPE_MASK, data + NLA_HDRLEN, attribute->nla_len - NLA_HDRLEN);
    size_t step = NLA_ALIGN(attribute->nla_len);
    if (step >= size) return;
    data += step;
    size -= step;
  }
}

// The per-thread record of one TASKSTATS_CMD_NEW message, if it has one (a
// thread group's total, sent when a group dies, is skipped: its threads came
// one by one).
kj::Maybe<ExitRecord> parseMessage(const nlmsghdr* message) {
  if (message->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN)) return nullptr;
  const char* payload = static_cast<const char*>(NLMSG_DATA(message)) + GENL_HDRLEN;
  size_t size = message->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
  kj::Maybe<ExitRecord> found;
  forAttributes(payload, size, [&](uint16_t type, const char* data, size_t length) {
    if (type != TASKSTATS_TYPE_AGGR_PID) return;
    forAttributes(data, length, [&](uint16_t inner, const char* value, size_t valueLength) {
      if (inner != TASKSTATS_TYPE_STATS) return;
      taskstats stats{};  // fields a kernel's older layout lacks stay zero
      memcpy(&stats, value, kj::min(valueLength, sizeof(stats)));
      if (stats.version == MISLAID_VERSION) return;
      ExitRecord record;
      record.pid = stats.ac_pid;
      record.ppid = stats.ac_ppid;
      record.tgid = stats.version >= 12 ? stats.ac_tgid : 0;
      record.cpuNs = stats.cpu_run_virtual_total;
      record.utimeNs = stats.ac_utime * 1000;
      record.stimeNs = stats.ac_stime * 1000;
      record.runDelayNs = stats.cpu_delay_total;
      record.rchar = stats.read_char;
      record.wchar = stats.write_char;
      record.readBytes = stats.read_bytes;
      record.writeBytes = stats.write_bytes;
      record.peakRssBytes = stats.hiwater_rss * 1024;
      found = record;
    });
  });
  return found;
}

// The kernel's answer to a request: an error, or the messages before its ack.
kj::Maybe<kj::String> exchange(int fd, const Request& r,
                               kj::FunctionParam<void(const nlmsghdr*)> each) {
  if (send(fd, &r, r.header.nlmsg_len, 0) < 0) return kj::str("send: ", strerror(errno));
  char buffer[16384];
  for (;;) {
    ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
    if (got < 0) return kj::str("receive: ", strerror(errno));
    size_t left = got;
    for (auto* m = reinterpret_cast<const nlmsghdr*>(buffer); NLMSG_OK(m, left);
         m = NLMSG_NEXT(m, left)) {
      if (m->nlmsg_type == NLMSG_ERROR) {
        auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(m));
        if (error->error == 0) return nullptr;
        return kj::str(strerror(-error->error));
      }
      each(m);
    }
  }
}

kj::Maybe<uint16_t> familyId(int fd, kj::String& why) {
  auto r = request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY);
  addAttribute(r, CTRL_ATTR_FAMILY_NAME, TASKSTATS_GENL_NAME, sizeof(TASKSTATS_GENL_NAME));
  kj::Maybe<uint16_t> id;
  KJ_IF_MAYBE(error, exchange(fd, r, [&](const nlmsghdr* m) {
    const char* payload = static_cast<const char*>(NLMSG_DATA(m)) + GENL_HDRLEN;
    forAttributes(payload, m->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN),
                  [&](uint16_t type, const char* data, size_t size) {
                    if (type == CTRL_ATTR_FAMILY_ID && size >= 2) {
                      uint16_t value;
                      memcpy(&value, data, sizeof(value));
                      id = value;
                    }
                  });
  })) {
    why = kj::str("no taskstats family: ", *error);
    return nullptr;
  }
  if (id == nullptr) why = kj::str("no taskstats family in the kernel's answer");
  return id;
}

}  // namespace

kj::OneOf<kj::Own<TaskstatsExits>, kj::String> TaskstatsExits::open(kj::UnixEventPort& events) {
  kj::AutoCloseFd owned(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC));
  if (owned.get() < 0) return kj::str("taskstats: netlink socket: ", strerror(errno));
  int fd = owned.get();
  timeval patience{2, 0};  // the setup exchanges only; records are read non-blocking
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience));
  int bytes = RECEIVE_BUFFER_BYTES;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  }
  kj::String why;
  uint16_t family;
  KJ_IF_MAYBE(id, familyId(fd, why)) {
    family = *id;
  } else {
    return kj::str("taskstats: ", why);
  }

  // Our own record first: it says which layout the kernel speaks, and whether
  // it fills the exact CPU time (delay accounting compiled in).
  auto query = request(family, TASKSTATS_CMD_GET);
  uint32_t self = getpid();
  addAttribute(query, TASKSTATS_CMD_ATTR_PID, &self, sizeof(self));
  kj::Maybe<ExitRecord> own;
  uint16_t version = 0;
  KJ_IF_MAYBE(error, exchange(fd, query, [&](const nlmsghdr* m) {
    own = parseMessage(m);
    const char* payload = static_cast<const char*>(NLMSG_DATA(m)) + GENL_HDRLEN;
    forAttributes(payload, m->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN),
                  [&](uint16_t, const char* data, size_t size) {
                    forAttributes(data, size, [&](uint16_t inner, const char* value, size_t n) {
                      if (inner == TASKSTATS_TYPE_STATS && n >= 2) memcpy(&version, value, 2);
                    });
                  });
  })) {
    return kj::str("taskstats: the kernel refused a query (", *error,
                   "; needs root in the initial user and PID namespaces)");
  }
  if (version == MISLAID_VERSION) {
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
  auto subscribe = request(family, TASKSTATS_CMD_GET);
  addAttribute(subscribe, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpus.cStr(), cpus.size() + 1);
  KJ_IF_MAYBE(error, exchange(fd, subscribe, [](const nlmsghdr*) {})) {
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
  auto r = request(family, TASKSTATS_CMD_GET);
  r.header.nlmsg_flags = NLM_F_REQUEST;
  addAttribute(r, TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, cpus.cStr(), cpus.size() + 1);
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
