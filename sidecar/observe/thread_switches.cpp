#include "observe/thread_switches.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proc_files.h"

namespace tracer {

ThreadSwitches::ThreadSwitches(): taskstats(openTaskstatsSocket()) {
  // A sidecar that may not ask (not root in the initial namespaces) learns
  // it once, here, rather than with a refusal at every registration.
  if (taskstats.is<TaskstatsSocket>() && query(syscall(SYS_gettid)) == nullptr) {
    taskstats = kj::str("taskstats gave no record of the sidecar's own thread: refused "
                        "(not root in the initial namespaces), or in a layout not read (v15)");
  }
}

kj::Maybe<uint64_t> ThreadSwitches::voluntary(pid_t tid) {
  if (taskstats.is<TaskstatsSocket>()) {
    KJ_IF_MAYBE(switches, query(tid)) { return *switches; }
  }
  // The thread is gone (ESRCH), or the kernel refuses: /proc says which.
  return readVoluntarySwitches(tid);
}

kj::Maybe<uint64_t> ThreadSwitches::query(pid_t tid) {
  auto& socket = taskstats.get<TaskstatsSocket>();
  auto request = taskstatsRequest(socket.family, TASKSTATS_CMD_GET);
  request.header.nlmsg_flags = NLM_F_REQUEST;  // the answer alone, no ack: one receive
  request.header.nlmsg_seq = ++sequence;
  uint32_t id = tid;
  addTaskstatsAttribute(request, TASKSTATS_CMD_ATTR_PID, &id, sizeof(id));
  if (send(socket.fd.get(), &request, request.header.nlmsg_len, 0) < 0) return nullptr;
  // The kernel answers within the send: nothing queued now is no answer. An
  // answer to an earlier query (its sequence number) is passed over.
  char buffer[4096];
  for (;;) {
    ssize_t got = recv(socket.fd.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (got < 0) return nullptr;
    auto* message = reinterpret_cast<const nlmsghdr*>(buffer);
    size_t left = got;
    if (!NLMSG_OK(message, left) || message->nlmsg_seq != sequence) continue;
    if (message->nlmsg_type != socket.family) return nullptr;  // an error
    KJ_IF_MAYBE(stats, threadRecordIn(message)) {
      if (laidOutAsOurs(*stats)) return uint64_t(stats->nvcsw);
    }
    return nullptr;
  }
}

kj::StringPtr ThreadSwitches::source() const {
  return taskstats.is<TaskstatsSocket>() ? kj::StringPtr("taskstats")
                                         : taskstats.get<kj::String>().asPtr();
}

}  // namespace tracer
