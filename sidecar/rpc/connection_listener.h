#pragma once
// Accepts clients on the sidecar's Unix socket and serves each one its own
// Cap'n Proto RPC system, bound to the peer's kernel-verified identity. The
// access policy decides who may connect at all (a refused client is told why
// and closed before anything it sent is read) and caps each connection's live
// scopes and call rate. A client that sends garbage loses its connection (with
// the reason logged); nobody else notices.

#include <capnp/message.h>
#include <kj/async-io.h>

#include "rpc/services.h"

namespace tracer {

class ConnectionListener {
 public:
  ConnectionListener(Services& services, kj::Timer& timer,
                     kj::Own<kj::ConnectionReceiver> receiver, capnp::ReaderOptions limits);
  ~ConnectionListener() noexcept(false);

  // Accepts until destroyed.
  kj::Promise<void> run();

 private:
  class Connection;

  void serve(kj::Own<kj::AsyncIoStream> stream);
  kj::Promise<void> turnAway(kj::Own<kj::AsyncIoStream> stream, kj::String why);
  static kj::Promise<void> discardUntilClosed(kj::AsyncIoStream& stream);

  class ErrorHandler final: public kj::TaskSet::ErrorHandler {
   public:
    explicit ErrorHandler(Log& log): log(log) {}
    void taskFailed(kj::Exception&& exception) override;
    Log& log;
  };

  Services& services;
  kj::Timer& timer;
  kj::Own<kj::ConnectionReceiver> receiver;
  capnp::ReaderOptions limits;
  ErrorHandler errorHandler;
  kj::TaskSet connections;  // after errorHandler: destroyed first
};

}  // namespace tracer
