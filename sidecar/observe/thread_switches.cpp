#include "observe/thread_switches.h"

#include <sys/socket.h>

#include "proc_files.h"

namespace tracer {

ThreadSwitches::ThreadSwitches(): taskstats(openTaskstatsSocket()) {}

kj::Maybe<uint64_t> ThreadSwitches::voluntary(pid_t tid) {
  if (!taskstats.is<TaskstatsSocket>()) return readVoluntarySwitches(tid);
  auto& socket = taskstats.get<TaskstatsSocket>();
  auto query = taskstatsRequest(socket.family, TASKSTATS_CMD_GET);
  query.header.nlmsg_flags = NLM_F_REQUEST;  // the answer alone, no ack: one receive
  query.header.nlmsg_seq = ++sequence;
  uint32_t id = tid;
  addTaskstatsAttribute(query, TASKSTATS_CMD_ATTR_PID, &id, sizeof(id));
  if (send(socket.fd.get(), &query, query.header.nlmsg_len, 0) < 0) {
    return readVoluntarySwitches(tid);
  }
  // The kernel answers within the send: nothing queued now is no answer. An
  // answer to an earlier query (its sequence number) is passed over.
  char buffer[4096];
  for (;;) {
    ssize_t got = recv(socket.fd.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (got < 0) return readVoluntarySwitches(tid);
    auto* message = reinterpret_cast<const nlmsghdr*>(buffer);
    size_t left = got;
    if (!NLMSG_OK(message, left) || message->nlmsg_seq != sequence) continue;
    if (message->nlmsg_type == socket.family) {
      KJ_IF_MAYBE(stats, threadRecordIn(message)) { return uint64_t(stats->nvcsw); }
    }
    // An error (the thread is gone: ESRCH), or no record: /proc says which.
    return readVoluntarySwitches(tid);
  }
}

kj::StringPtr ThreadSwitches::source() const {
  return taskstats.is<TaskstatsSocket>() ? kj::StringPtr("taskstats")
                                         : taskstats.get<kj::String>().asPtr();
}

}  // namespace tracer
