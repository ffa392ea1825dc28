#pragma once
// The kernel's taskstats over generic netlink, as both of its users speak it:
// the exit-record listener (taskstats_exits.h) and the per-thread query
// (thread_switches.h). Root in the initial namespaces only (CAP_NET_ADMIN).

#include <kj/function.h>
#include <kj/io.h>
#include <kj/one-of.h>
#include <kj/string.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <stdint.h>

#include <cstddef>

namespace tracer {

// Version 15 inserted fields in the middle of struct taskstats (Linux 6.16
// only; version 16 moved them to its end): its offsets are not ours.
constexpr uint16_t MISLAID_TASKSTATS_VERSION = 15;

struct TaskstatsRequest {
  nlmsghdr header;
  genlmsghdr genl;
  char attributes[256];
};

TaskstatsRequest taskstatsRequest(uint16_t family, uint8_t command);
void addTaskstatsAttribute(TaskstatsRequest& request, uint16_t type, const void* data, size_t size);

// Calls `each(type, data, size)` with every attribute in [data, data + size).
template <typename Each>
void forNetlinkAttributes(const char* data, size_t size, Each&& each) {
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

// The kernel's answer to a request: an error, or the messages before its ack.
kj::Maybe<kj::String> exchangeTaskstats(int fd, const TaskstatsRequest& request,
                               kj::FunctionParam<void(const nlmsghdr*)> each);

// A generic netlink socket (SOCK_CLOEXEC, answers awaited at most 2 s) and
// the taskstats family's id on it; or why not, in one line.
struct TaskstatsSocket {
  kj::AutoCloseFd fd;
  uint16_t family;
};
kj::OneOf<TaskstatsSocket, kj::String> openTaskstatsSocket();

// The per-thread record in a TASKSTATS_CMD_NEW message, if it has one (a
// thread group's total, sent when a group dies, is skipped: its threads come
// one by one). Fields an older kernel's layout lacks are zero.
kj::Maybe<taskstats> threadRecordIn(const nlmsghdr* message);

// Whether a record's fields are where struct taskstats says (not version 15's).
inline bool laidOutAsOurs(const taskstats& record) {
  return record.version != MISLAID_TASKSTATS_VERSION;
}

}  // namespace tracer
