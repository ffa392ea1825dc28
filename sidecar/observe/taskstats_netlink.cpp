#include "observe/taskstats_netlink.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

namespace tracer {

TaskstatsRequest taskstatsRequest(uint16_t family, uint8_t command) {
  TaskstatsRequest r{};
  r.header.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
  r.header.nlmsg_type = family;
  r.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  r.genl.cmd = command;
  r.genl.version = 1;
  return r;
}

void addTaskstatsAttribute(TaskstatsRequest& request, uint16_t type, const void* data, size_t size) {
  auto* attribute = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(&request) +
                                              NLMSG_ALIGN(request.header.nlmsg_len));
  attribute->nla_type = type;
  attribute->nla_len = NLA_HDRLEN + size;
  memcpy(reinterpret_cast<char*>(attribute) + NLA_HDRLEN, data, size);
  request.header.nlmsg_len = NLMSG_ALIGN(request.header.nlmsg_len) + NLA_ALIGN(attribute->nla_len);
}

kj::Maybe<kj::String> exchangeTaskstats(int fd, const TaskstatsRequest& r,
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

kj::OneOf<TaskstatsSocket, kj::String> openTaskstatsSocket() {
  kj::AutoCloseFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC));
  if (fd.get() < 0) return kj::str("netlink socket: ", strerror(errno));
  timeval patience{2, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience));
  auto r = taskstatsRequest(GENL_ID_CTRL, CTRL_CMD_GETFAMILY);
  addTaskstatsAttribute(r, CTRL_ATTR_FAMILY_NAME, TASKSTATS_GENL_NAME, sizeof(TASKSTATS_GENL_NAME));
  kj::Maybe<uint16_t> id;
  KJ_IF_MAYBE(error, exchangeTaskstats(fd.get(), r, [&](const nlmsghdr* m) {
    const char* payload = static_cast<const char*>(NLMSG_DATA(m)) + GENL_HDRLEN;
    forNetlinkAttributes(payload, m->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN),
                  [&](uint16_t type, const char* data, size_t size) {
                    if (type == CTRL_ATTR_FAMILY_ID && size >= 2) {
                      uint16_t value;
                      memcpy(&value, data, sizeof(value));
                      id = value;
                    }
                  });
  })) {
    return kj::str("no taskstats family: ", *error);
  }
  KJ_IF_MAYBE(family, id) { return TaskstatsSocket{kj::mv(fd), *family}; }
  return kj::str("no taskstats family in the kernel's answer");
}

kj::Maybe<taskstats> threadRecordIn(const nlmsghdr* message) {
  if (message->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN)) return nullptr;
  const char* payload = static_cast<const char*>(NLMSG_DATA(message)) + GENL_HDRLEN;
  size_t size = message->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
  kj::Maybe<taskstats> found;
  forNetlinkAttributes(payload, size, [&](uint16_t type, const char* data, size_t length) {
    if (type != TASKSTATS_TYPE_AGGR_PID) return;
    forNetlinkAttributes(data, length, [&](uint16_t inner, const char* value, size_t valueLength) {
      if (inner != TASKSTATS_TYPE_STATS) return;
      taskstats stats{};
      memcpy(&stats, value, kj::min(valueLength, sizeof(stats)));
      found = stats;
    });
  });
  return found;
}

}  // namespace tracer
