#pragma once
// Accepts clients on the sidecar's Unix socket and serves each one its own
// Cap'n Proto RPC system, bound to the peer's kernel-verified identity. The
// access policy decides who may connect at all (a refused client is told why
// and closed before anything it sent is read) and caps each connection's live
// scopes and call rate. A client that sends garbage loses its connection (with
// the reason logged); nobody else notices.

#include <capnp/message.h>
#include <kj/async-io.h>
#include <kj/map.h>

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
  // Why a connection of `uid` would pass a cap (AccessPolicy), or nullptr.
  kj::Maybe<kj::String> overCap(uid_t uid) const;
  kj::Promise<void> turnAway(kj::Own<kj::AsyncIoStream> stream, kj::String why);
  // A refusal over a cap, logged at most once a second with how many since.
  void noteOverCap(kj::StringPtr why);
  static kj::Promise<void> discardUntilClosed(kj::AsyncIoStream& stream);

  class ErrorHandler final: public kj::TaskSet::ErrorHandler {
   public:
    explicit ErrorHandler(Log& log): log(log) {}
    void taskFailed(kj::Exception&& exception) override;
    Log& log;
  };

  // Holds its uid's place among the connections while the connection lasts.
  class Place;

  Services& services;
  kj::Timer& timer;
  kj::Own<kj::ConnectionReceiver> receiver;
  capnp::ReaderOptions limits;
  kj::HashMap<uid_t, uint32_t> connectionsByUid;
  uint32_t connectionsOfOthers = 0;  // of every uid but root's
  uint32_t turningAway = 0;          // refused connections told why, not yet closed
  kj::Duration acceptBackoff = 0 * kj::SECONDS;
  kj::Maybe<kj::TimePoint> overCapLoggedAt;
  uint64_t overCapSinceLog = 0;
  ErrorHandler errorHandler;
  kj::TaskSet connections;  // after errorHandler: destroyed first
};

}  // namespace tracer
