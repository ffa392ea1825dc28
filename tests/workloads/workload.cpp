// Deterministic workloads for the observer's accuracy tests. Each mode does one
// thing whose true cost the test can learn independently (rusage from wait4,
// or bytes it moved itself).
//
//   workload threads N MS        N threads, each burning MS of CPU
//   workload children N MS [FILE] N child processes, one after another, each burning MS of CPU;
//                                FILE gets how many the parent reaped within 100 ms of forking
//   workload spawn N MIN MAX     N children exec'ing `workload live X`, X in [MIN, MAX] ms
//   workload live MS             burn CPU for MS, then exit
//   workload touch MIB           allocate and touch MIB of memory, hold it 200 ms
//   workload write MIB PATH      write MIB to PATH and fsync
//   workload tcp MB              send MB (10^6 bytes) to itself over loopback TCP
//   workload odirect PATH        read PATH with O_DIRECT
//   workload oom                 allocate until the OOM killer stops it
//   workload pingpong N          N round trips between two processes over pipes
//   workload execstorm N         posix_spawn /bin/true N times, one after another
//   workload reads N             N one-byte read()s from /dev/zero

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

uint64_t threadCpuNs() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return uint64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

void burn(long ms) {
  uint64_t until = threadCpuNs() + uint64_t(ms) * 1000000;
  volatile uint64_t sink = 0;
  while (threadCpuNs() < until) {
    for (int i = 0; i < 1000; ++i) sink = sink + i;
  }
}

int fail(const char* what) {
  perror(what);
  return 1;
}

int threads(int n, long ms) {
  std::vector<std::thread> all;
  for (int i = 0; i < n; ++i) all.emplace_back([ms]() { burn(ms); });
  for (auto& t: all) t.join();
  return 0;
}

// One at a time, so each lives about MS: started all at once on two CPUs,
// a hundred 5 ms children shared them and some lived past 100 ms. A child the
// parent reaped within 100 ms of forking it lived less than that: a lower
// bound on the short-lived, for an emulated CPU that can stall for longer.
int children(int n, long ms, const char* countFile) {
  int reapedWithin100Ms = 0;
  for (int i = 0; i < n; ++i) {
    auto forked = std::chrono::steady_clock::now();
    pid_t pid = fork();
    if (pid == 0) {
      burn(ms);
      _exit(0);
    }
    waitpid(pid, nullptr, 0);
    if (std::chrono::steady_clock::now() - forked < std::chrono::milliseconds(100)) {
      ++reapedWithin100Ms;
    }
  }
  if (countFile != nullptr) {
    FILE* out = fopen(countFile, "w");
    if (out == nullptr) return 1;
    fprintf(out, "%d\n", reapedWithin100Ms);
    fclose(out);
  }
  return 0;
}

int spawn(const char* self, int n, long minMs, long maxMs) {
  srand(42);
  for (int i = 0; i < n; ++i) {
    std::string ms = std::to_string(minMs + rand() % (maxMs - minMs + 1));
    char* argv[] = {const_cast<char*>(self), const_cast<char*>("live"),
                    const_cast<char*>(ms.c_str()), nullptr};
    pid_t pid;
    if (posix_spawn(&pid, self, nullptr, nullptr, argv, environ) != 0) return fail("posix_spawn");
    int status;
    waitpid(pid, &status, 0);
  }
  return 0;
}

int touch(long mib) {
  size_t bytes = size_t(mib) << 20;
  // volatile: the pages must really be written, not optimized away with the free().
  volatile char* memory = static_cast<volatile char*>(malloc(bytes));
  if (memory == nullptr) return fail("malloc");
  for (size_t i = 0; i < bytes; i += 4096) memory[i] = 1;
  usleep(200000);
  free(const_cast<char*>(memory));
  return 0;
}

int writeFile(long mib, const char* path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return fail("open");
  std::vector<char> block(1 << 20, 'x');
  for (long i = 0; i < mib; ++i) {
    if (write(fd, block.data(), block.size()) != ssize_t(block.size())) return fail("write");
  }
  if (fsync(fd) != 0) return fail("fsync");
  close(fd);
  return 0;
}

int tcp(long megabytes) {
  int server = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(server, reinterpret_cast<sockaddr*>(&address), length) != 0) return fail("bind");
  listen(server, 1);
  getsockname(server, reinterpret_cast<sockaddr*>(&address), &length);
  size_t total = size_t(megabytes) * 1000000;
  std::thread receiver([&]() {
    int peer = accept(server, nullptr, nullptr);
    std::vector<char> buffer(1 << 16);
    size_t received = 0;
    ssize_t n;
    while ((n = read(peer, buffer.data(), buffer.size())) > 0) received += n;
    close(peer);
    if (received != total) fprintf(stderr, "received %zu of %zu\n", received, total);
  });
  int client = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(client, reinterpret_cast<sockaddr*>(&address), length) != 0) return fail("connect");
  std::vector<char> buffer(1 << 16, 'y');
  size_t sent = 0;
  while (sent < total) {
    ssize_t n = write(client, buffer.data(), std::min(buffer.size(), total - sent));
    if (n <= 0) return fail("write");
    sent += n;
  }
  close(client);
  receiver.join();
  close(server);
  return 0;
}

int odirect(const char* path) {
  int fd = open(path, O_RDONLY | O_DIRECT);
  if (fd < 0) return fail("open O_DIRECT");
  void* buffer;
  if (posix_memalign(&buffer, 4096, 1 << 20) != 0) return fail("posix_memalign");
  while (read(fd, buffer, 1 << 20) > 0) {
  }
  close(fd);
  return 0;
}

int oom() {
  std::vector<char*> blocks;
  for (;;) {
    volatile char* block = static_cast<volatile char*>(malloc(16 << 20));
    if (block == nullptr) return fail("malloc");
    for (size_t i = 0; i < (16 << 20); i += 4096) block[i] = 1;
    blocks.push_back(const_cast<char*>(block));
  }
}

int pingpong(long rounds) {
  int there[2], back[2];
  if (pipe(there) != 0 || pipe(back) != 0) return fail("pipe");
  char byte = 0;
  pid_t echo = fork();
  if (echo == 0) {
    close(there[1]);
    close(back[0]);
    while (read(there[0], &byte, 1) == 1) {
      if (write(back[1], &byte, 1) != 1) _exit(1);
    }
    _exit(0);
  }
  close(there[0]);
  close(back[1]);
  for (long i = 0; i < rounds; ++i) {
    if (write(there[1], &byte, 1) != 1 || read(back[0], &byte, 1) != 1) return fail("pingpong");
  }
  close(there[1]);
  waitpid(echo, nullptr, 0);
  return 0;
}

int execstorm(long count) {
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  for (long i = 0; i < count; ++i) {
    pid_t pid;
    if (posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) != 0) {
      return fail("posix_spawn");
    }
    waitpid(pid, nullptr, 0);
  }
  return 0;
}

int reads(long count) {
  int fd = open("/dev/zero", O_RDONLY);
  if (fd < 0) return fail("open /dev/zero");
  char byte;
  for (long i = 0; i < count; ++i) {
    if (read(fd, &byte, 1) != 1) return fail("read");
  }
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  auto arg = [&](int i) { return i < argc ? atol(argv[i]) : 0; };
  if (mode == "threads" && argc == 4) return threads(arg(2), arg(3));
  if (mode == "children" && (argc == 4 || argc == 5)) {
    return children(arg(2), arg(3), argc == 5 ? argv[4] : nullptr);
  }
  if (mode == "spawn" && argc == 5) return spawn(argv[0], arg(2), arg(3), arg(4));
  if (mode == "live" && argc == 3) return burn(arg(2)), 0;
  if (mode == "touch" && argc == 3) return touch(arg(2));
  if (mode == "write" && argc == 4) return writeFile(arg(2), argv[3]);
  if (mode == "tcp" && argc == 3) return tcp(arg(2));
  if (mode == "odirect" && argc == 3) return odirect(argv[2]);
  if (mode == "oom" && argc == 2) return oom();
  if (mode == "pingpong" && argc == 3) return pingpong(arg(2));
  if (mode == "execstorm" && argc == 3) return execstorm(arg(2));
  if (mode == "reads" && argc == 3) return reads(arg(2));
  fprintf(stderr, "usage: see the comment at the top of workload.cpp\n");
  return 2;
}
