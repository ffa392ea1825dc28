// Task start+finish pairs through the C ABI (libtracer_client.so), as the
// Python plugin drives them, against a running sidecar.
//
//   client_bench SOCKET PROCESSES PAIRS_PER_PROCESS
//   client_bench --baseline     (a bare Unix-socket round trip between two processes,
//                                the floor under any RPC on this machine)
//
// Each process opens its own client and flow run and times every
// tracer_task_start() until the sidecar has acknowledged the registration.
// Prints pairs/s over the whole run and p50/p99 of the start call.

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tracer_client.h"

namespace {

using Clock = std::chrono::steady_clock;

double nanosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

// One client process: returns its start latencies (ns) through `out`.
int runClient(const char* socket, int index, int pairs, int out) {
  tracer_client* client = tracer_client_open(socket);
  if (!tracer_client_wait_connected(client, 5000)) {
    fprintf(stderr, "client %d: %s\n", index, tracer_last_error());
    return 1;
  }
  std::string flowInfo = "{\"flow_run_id\":\"bench-" + std::to_string(index) +
                         "\",\"flow_name\":\"bench\"}";
  tracer_flow* flow = tracer_flow_open(client, flowInfo.c_str());
  std::vector<double> latencies;
  latencies.reserve(pairs);
  const char* taskInfo = "{\"task_run_id\":\"bench-task\",\"task_name\":\"t\"}";
  for (int i = 0; i < pairs; ++i) {
    auto started = Clock::now();
    tracer_task* task = tracer_task_start(flow, taskInfo, 0, 5000);
    latencies.push_back(nanosSince(started));
    if (tracer_task_status(task) != 1) {
      fprintf(stderr, "client %d: start failed: %s\n", index, tracer_last_error());
      return 1;
    }
    char* report = tracer_task_finish(task, "completed", 5000);
    if (report == nullptr) {
      fprintf(stderr, "client %d: finish failed: %s\n", index, tracer_last_error());
      return 1;
    }
    tracer_free(report);
  }
  tracer_flow_finish(flow, "completed", 5000);
  tracer_client_close(client);
  size_t bytes = latencies.size() * sizeof(double);
  return write(out, latencies.data(), bytes) == static_cast<ssize_t>(bytes) ? 0 : 1;
}

double percentile(std::vector<double>& values, double p) {
  size_t index = std::min(values.size() - 1, static_cast<size_t>(p / 100.0 * values.size()));
  std::nth_element(values.begin(), values.begin() + index, values.end());
  return values[index];
}

// Two processes bouncing 64 bytes over a socketpair: what one round trip costs here.
int baseline() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 1;
  char message[64] = {};
  pid_t echo = fork();
  if (echo < 0) return 1;
  if (echo == 0) {
    close(fds[0]);
    while (read(fds[1], message, sizeof(message)) > 0) {
      if (write(fds[1], message, sizeof(message)) != sizeof(message)) _exit(1);
    }
    _exit(0);
  }
  close(fds[1]);
  const int rounds = 50000;
  auto started = Clock::now();
  for (int i = 0; i < rounds; ++i) {
    if (write(fds[0], message, sizeof(message)) != sizeof(message)) return 1;
    if (read(fds[0], message, sizeof(message)) != sizeof(message)) return 1;
  }
  double perRound = nanosSince(started) / rounds;
  close(fds[0]);
  waitpid(echo, nullptr, 0);
  printf("baseline   bare Unix-socket round trip between two processes: %.1f us\n",
         perRound / 1000);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--baseline") return baseline();
  if (argc != 4) {
    fprintf(stderr, "usage: %s SOCKET PROCESSES PAIRS_PER_PROCESS\n", argv[0]);
    return 2;
  }
  const char* socket = argv[1];
  int processes = atoi(argv[2]);
  int pairs = atoi(argv[3]);

  std::vector<int> pipes;
  std::vector<pid_t> children;
  auto started = Clock::now();
  for (int i = 0; i < processes; ++i) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      _exit(runClient(socket, i, pairs, fds[1]));
    }
    close(fds[1]);
    pipes.push_back(fds[0]);
    children.push_back(pid);
  }
  std::vector<double> latencies;
  for (int fd: pipes) {
    std::vector<double> chunk(pairs);
    size_t want = chunk.size() * sizeof(double), got = 0;
    ssize_t n;
    while (got < want && (n = read(fd, reinterpret_cast<char*>(chunk.data()) + got, want - got)) > 0) {
      got += n;
    }
    close(fd);
    latencies.insert(latencies.end(), chunk.begin(), chunk.begin() + got / sizeof(double));
  }
  bool ok = true;
  for (pid_t pid: children) {
    int status;
    waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  double seconds = nanosSince(started) / 1e9;
  if (!ok || latencies.size() != static_cast<size_t>(processes) * pairs) {
    fprintf(stderr, "some clients failed\n");
    return 1;
  }
  printf("C ABI      %d process(es) x %d pairs: %.0f pairs/s, start p50 %.1f us, p99 %.1f us\n",
         processes, pairs, latencies.size() / seconds, percentile(latencies, 50) / 1000,
         percentile(latencies, 99) / 1000);
  return 0;
}
