#include "ctl/run_command.h"

#include <capnp/message.h>
#include <fcntl.h>
#include <kj/debug.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "contract_json.h"
#include "ctl/report_text.h"
#include "tracer.capnp.h"

namespace tracer {

namespace {

constexpr int REGISTER_WAIT_MS = 2000;
constexpr int REPORT_WAIT_MS = 5000;

kj::String runId() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return kj::str("tracerctl-", getpid(), "-", now.tv_sec, now.tv_nsec);
}

// The child waits on `go` until it is registered, then execs; an exec failure
// comes back through `execFailed` (closed on a successful exec).
pid_t startHeld(kj::ArrayPtr<const kj::StringPtr> command, int& go, int& execFailed) {
  int goPipe[2], failPipe[2];
  KJ_SYSCALL(pipe2(goPipe, O_CLOEXEC));
  KJ_SYSCALL(pipe2(failPipe, O_CLOEXEC));
  kj::Vector<char*> argv;
  kj::Vector<kj::String> copies;
  for (auto arg: command) copies.add(kj::str(arg));
  for (auto& arg: copies) argv.add(arg.begin());
  argv.add(nullptr);
  pid_t child = fork();
  KJ_SYSCALL(child);
  if (child == 0) {
    close(goPipe[1]);
    close(failPipe[0]);
    char byte;
    if (read(goPipe[0], &byte, 1) != 1) _exit(126);  // tracerctl died before releasing us
    execvp(argv[0], argv.begin());
    int err = errno;
    ssize_t ignored = write(failPipe[1], &err, sizeof(err));
    (void)ignored;
    _exit(127);
  }
  close(goPipe[0]);
  close(failPipe[1]);
  go = goPipe[1];
  execFailed = failPipe[0];
  return child;
}

}  // namespace

int runObserved(tracer_client* client, const RunOptions& options,
                kj::ArrayPtr<const kj::StringPtr> command) {
  auto name = options.name.size() ? kj::str(options.name) : [&]() {
    KJ_IF_MAYBE(slash, command[0].findLast('/')) { return kj::str(command[0].slice(*slash + 1)); }
    return kj::str(command[0]);
  }();
  kj::Vector<kj::String> tags;
  for (auto& tag: options.tags) tags.add(jsonQuoted(tag));

  int go, execFailed;
  pid_t child = startHeld(command, go, execFailed);

  auto flowInfo = kj::str("{\"flow_run_id\":", jsonQuoted(runId()), ",\"flow_name\":",
                          jsonQuoted(options.flow), "}");
  tracer_flow* flow = tracer_flow_open(client, flowInfo.cStr());
  auto taskInfo = kj::str("{\"task_run_id\":", jsonQuoted(runId()), ",\"task_name\":", jsonQuoted(name),
                          ",\"tags\":[", kj::strArray(tags, ","), "],\"own_process\":true}");
  tracer_task* task = flow ? tracer_task_start(flow, taskInfo.cStr(), child, REGISTER_WAIT_MS)
                           : nullptr;
  if (task == nullptr || tracer_task_status(task) != 1) {
    fprintf(stderr, "tracerctl: running unobserved: %s\n", tracer_last_error());
  }

  // Like /usr/bin/time: the terminal's signals are for the command, not for us.
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  char byte = 1;
  KJ_SYSCALL(write(go, &byte, 1));
  close(go);
  int err = 0;
  bool execOk = read(execFailed, &err, sizeof(err)) != sizeof(err);
  close(execFailed);

  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  int exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (!execOk) fprintf(stderr, "tracerctl: cannot run %s: %s\n", command[0].cStr(), strerror(err));

  const char* state = exitCode == 0 ? "completed" : "failed";
  tracer_report* finished = nullptr;
  if (task) tracer_task_finish(task, state, &finished);
  char* report = tracer_report_wait(finished, REPORT_WAIT_MS);
  tracer_report_free(finished);
  if (flow) tracer_flow_finish(flow, state, REPORT_WAIT_MS);
  if (report == nullptr) {
    if (task) fprintf(stderr, "tracerctl: no report: %s\n", tracer_last_error());
    return exitCode;
  }
  if (options.json) {
    printf("%s\n", report);
  } else {
    capnp::MallocMessageBuilder message;
    auto parsed = message.initRoot<proto::TaskReport>();
    fromContractJson(report, capnp::toDynamic(parsed));
    fprintf(stderr, "%s\n", reportText(parsed).cStr());
  }
  tracer_free(report);
  return exitCode;
}

}  // namespace tracer
