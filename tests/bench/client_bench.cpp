// Task start+finish pairs through the C ABI (libtracer_client.so), as the
// Python plugin drives them (one-way: no wait, no report), against a running
// sidecar.
//
//   client_bench SOCKET PROCESSES PAIRS_PER_PROCESS RATE [--no-confirm]
//   client_bench --baseline     (a bare Unix-socket round trip between two processes,
//                                the floor under any RPC on this machine)
//
// Each process opens its own client and flow run and times, on its own
// thread, every tracer_task_start() + tracer_task_finish(): the cost a task
// pays. RATE is each process's pairs per second (0: as fast as it can, a
// flood that measures how much the sidecar takes in, and what the clients
// drop past it). Then it finishes its flow run and waits for the sidecar to confirm it,
// which it does only after every earlier message of that connection: pairs/s
// is over the time until the last process's confirmation, so it is what the
// sidecar ingested. --no-confirm (for a SIGSTOPped sidecar) skips that wait.
// Prints pairs/s, p50/p99 per task, the starts the clients dropped, and the
// clients' CPU per pair: all their threads' (the library's too) and pacing.

#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tracer_client.h"

namespace {

using Clock = std::chrono::steady_clock;

double nanosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

// What one client process sends back: its per-task costs (ns), then the
// starts it dropped and whether the sidecar confirmed its flow run.
struct Tail {
  double dropped;
  double confirmed;
};

int runClient(const char* socket, int index, int pairs, double rate, bool confirm, int out) {
  tracer_client* client = tracer_client_open(socket);
  if (!tracer_client_wait_connected(client, 5000)) {
    fprintf(stderr, "client %d: %s\n", index, tracer_last_error());
    return 1;
  }
  std::string flowInfo = "{\"flow_run_id\":\"bench-" + std::to_string(index) +
                         "\",\"flow_name\":\"bench\"}";
  tracer_flow* flow = tracer_flow_open(client, flowInfo.c_str());
  std::vector<double> costs;
  costs.reserve(pairs + 2);
  const char* taskInfo = "{\"task_run_id\":\"bench-task\",\"task_name\":\"t\"}";
  auto began = Clock::now();
  for (int i = 0; i < pairs; ++i) {
    if (rate > 0) {
      auto due = began + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(i / rate));
      std::this_thread::sleep_until(due);
    }
    auto started = Clock::now();
    tracer_task* task = tracer_task_start(flow, taskInfo, 0, 0);
    if (task != nullptr) tracer_task_finish(task, "completed", nullptr);
    costs.push_back(nanosSince(started));
  }
  Tail tail{static_cast<double>(tracer_client_dropped(client)), 0};
  tail.confirmed = confirm && tracer_flow_finish(flow, "completed", 60000) == 0;
  if (!confirm) tracer_flow_finish(flow, "completed", 0);
  tracer_client_close(client);
  costs.push_back(tail.dropped);
  costs.push_back(tail.confirmed);
  size_t bytes = costs.size() * sizeof(double);
  return write(out, costs.data(), bytes) == static_cast<ssize_t>(bytes) ? 0 : 1;
}

std::string pacedAt(double rate) {
  char text[64];
  snprintf(text, sizeof(text), "%.0f pairs/s each", rate);
  return text;
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
  if (argc != 5 && !(argc == 6 && std::string(argv[5]) == "--no-confirm")) {
    fprintf(stderr, "usage: %s SOCKET PROCESSES PAIRS_PER_PROCESS RATE [--no-confirm]\n",
            argv[0]);
    return 2;
  }
  const char* socket = argv[1];
  int processes = atoi(argv[2]);
  int pairs = atoi(argv[3]);
  double rate = atof(argv[4]);
  bool confirm = argc == 5;

  std::vector<int> pipes;
  std::vector<pid_t> children;
  auto started = Clock::now();
  for (int i = 0; i < processes; ++i) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      _exit(runClient(socket, i, pairs, rate, confirm, fds[1]));
    }
    close(fds[1]);
    pipes.push_back(fds[0]);
    children.push_back(pid);
  }
  std::vector<double> costs;
  double dropped = 0, confirmed = 0;
  for (int fd: pipes) {
    std::vector<double> chunk(pairs + 2);
    size_t want = chunk.size() * sizeof(double), got = 0;
    ssize_t n;
    while (got < want && (n = read(fd, reinterpret_cast<char*>(chunk.data()) + got, want - got)) > 0) {
      got += n;
    }
    close(fd);
    if (got != want) continue;
    costs.insert(costs.end(), chunk.begin(), chunk.begin() + pairs);
    dropped += chunk[pairs];
    confirmed += chunk[pairs + 1];
  }
  bool ok = true;
  for (pid_t pid: children) {
    int status;
    waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  double seconds = nanosSince(started) / 1e9;
  if (!ok || costs.size() != static_cast<size_t>(processes) * pairs) {
    fprintf(stderr, "some clients failed\n");
    return 1;
  }
  double p50 = percentile(costs, 50) / 1000, p99 = percentile(costs, 99) / 1000;
  auto paced = rate > 0 ? pacedAt(rate) : std::string("flood");
  // All the clients' CPU, their library threads' included (what a task's
  // own thread does not pay can still cost its process), and their pacing.
  rusage clients;
  getrusage(RUSAGE_CHILDREN, &clients);
  double clientCpuUs = (clients.ru_utime.tv_sec + clients.ru_stime.tv_sec) * 1e6 +
                       clients.ru_utime.tv_usec + clients.ru_stime.tv_usec;
  double clientCpuPerPair = clientCpuUs / costs.size();
  if (confirm) {
    printf("C ABI      %2d process(es) x %d pairs (%s): %6.0f pairs/s ingested (%.0f of %d flow "
           "runs confirmed), per task start+finish p50 %.1f us, p99 %.1f us, %.0f starts "
           "dropped; clients' CPU %.1f us a pair\n",
           processes, pairs, paced.c_str(), (costs.size() - dropped) / seconds, confirmed,
           processes, p50, p99, dropped, clientCpuPerPair);
  } else {
    printf("C ABI      %2d process(es) x %d pairs (%s), sidecar stopped: per task start+finish "
           "p50 %.1f us, p99 %.1f us, %.0f of %zu starts dropped; clients' CPU %.1f us a "
           "pair\n",
           processes, pairs, paced.c_str(), p50, p99, dropped, costs.size(), clientCpuPerPair);
  }
  return 0;
}
