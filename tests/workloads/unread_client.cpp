// A client that asks and never reads the answers: it bootstraps the sidecar
// and pipelines status() calls on that answer until the sidecar hangs up
// (a write fails). Prints how many calls it sent; exits 1 if it sent
// MAX_CALLS without being hung up on.
//
//   test_unread_client SOCKET

#include <capnp/message.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tracer.capnp.h"

namespace {

constexpr uint32_t MAX_CALLS = 2000000;

bool send(int fd, capnp::MallocMessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  for (size_t sent = 0; sent < bytes.size();) {
    ssize_t n = write(fd, bytes.begin() + sent, bytes.size() - sent);
    if (n < 0) return false;
    sent += n;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  strncpy(address.sun_path, argv[1], sizeof(address.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    perror("connect");
    return 2;
  }
  timeval patience{5, 0};  // a write that makes no progress for this long: it stopped reading
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof(patience));
  {
    capnp::MallocMessageBuilder message;
    message.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(0);
    if (!send(fd, message)) return 2;
  }
  for (uint32_t question = 1; question <= MAX_CALLS; ++question) {
    capnp::MallocMessageBuilder message;
    auto call = message.initRoot<capnp::rpc::Message>().initCall();
    call.setQuestionId(question);
    call.initTarget().initPromisedAnswer().setQuestionId(0);
    call.setInterfaceId(capnp::typeId<tracer::proto::Sidecar>());
    call.setMethodId(1);  // status()
    call.initParams().initContent().initAs<tracer::proto::Sidecar::StatusParams>();
    if (!send(fd, message)) {
      if (errno == EAGAIN) {
        printf("the sidecar stopped reading after %u calls\n", question - 1);
        return 3;
      }
      printf("hung up on after %u calls (%s)\n", question - 1, strerror(errno));
      return 0;
    }
  }
  printf("sent %u calls and was never hung up on\n", MAX_CALLS);
  return 1;
}
