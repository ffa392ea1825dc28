#include "rpc/connection_listener.h"

#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize-async.h>
#include <kj/debug.h>

#include "buffered_message_stream.h"
#include "rpc/caller.h"
#include "ops/peer_credentials.h"
#include "rpc/sidecar_server.h"
#include "rpc/token_bucket.h"

namespace tracer {

namespace {

constexpr kj::Duration REFUSED_LINGER = 1 * kj::SECONDS;

kj::Maybe<kj::String> abortReason(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  capnp::SegmentArrayMessageReader reader(segments);
  auto message = reader.getRoot<capnp::rpc::Message>();
  if (!message.isAbort()) return nullptr;
  return kj::str(message.getAbort().getReason());
}

}  // namespace

// One client: its stream, the RPC system on it, and why it ended. Reading is
// where a misbehaving client shows up (bad framing, oversized or malformed
// messages), so the read side records the first failure for the log line.
//
// Reading is also where the call-rate limit applies: a client over its rate
// is simply not read from until it is back under it (a token bucket holding
// one second's worth of calls), so a flood costs the sidecar nothing and
// slows only the flooder. Every other message counts too, against a budget
// of MESSAGES_PER_CALL per call: Bootstrap, Finish, Release and the rest cost
// the sidecar as much to handle (a Bootstrap holds an answer like a call).
// Answers one client may leave unread, at most: by size (a TaskReport is
// some 2 KiB; the largest answer, the outbox, 512 KiB) and by count (each
// queued answer holds a message builder of 8 KiB or more). And answers it may
// leave unfinished (the RPC system keeps each until the client's Finish: a
// client library sends it as soon as it has the answer).
constexpr size_t UNREAD_ANSWERS_MAX_BYTES = 8 * 1024 * 1024;
constexpr size_t UNREAD_ANSWERS_MAX = 1024;
constexpr uint64_t UNFINISHED_ANSWERS_MAX = 10000;
constexpr kj::Duration WEDGED_CHECK_INTERVAL = 1 * kj::SECONDS;
// A task's start and finish calls come with their Finishes and the task's
// Release: some 2.5 messages a call; the rest is headroom.
constexpr uint32_t MESSAGES_PER_CALL = 4;

class ConnectionListener::Connection final: public capnp::MessageStream {
 public:
  Connection(Services& services, kj::Timer& timer, kj::Own<kj::AsyncIoStream> stream,
             kj::Own<Caller> callerIn, capnp::ReaderOptions limits)
      : services(services),
        timer(timer),
        stream(kj::mv(stream)),
        caller(kj::mv(callerIn)),
        peer(caller->credentials()),
        marking(services.runs.allowStartMarks(peer.pid)),
        inner(*this->stream),
        network(*this, capnp::rpc::twoparty::Side::SERVER, limits),
        rpc(capnp::makeRpcServer(network, makeSidecarServer(services, kj::addRef(*caller)))),
        calls(services.access.maxCallsPerSecond, timer.now()),
        messages(double(services.access.maxCallsPerSecond) * MESSAGES_PER_CALL, timer.now()) {
    ++services.connectedClients;
  }
  ~Connection() noexcept(false) { --services.connectedClients; }

  kj::Promise<void> run() {
    return network.onDisconnect()
        .then([this]() {
          KJ_IF_MAYBE(reason, failure) {
            services.log.warn(kj::str("dropped connection from ", peer.describe(), ": ", *reason));
          } else {
            services.log.debug(kj::str("client ", peer.describe(), " disconnected"));
          }
        })
        .exclusiveJoin(watch());
  }

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(
      kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
      kj::ArrayPtr<capnp::word> scratchSpace) override {
    KJ_IF_MAYBE(why, wedged()) { return hangUp(kj::mv(*why)); }
    kj::Promise<void> allowed = kj::READY_NOW;
    KJ_IF_MAYBE(wait, waitForCallRate()) { allowed = timer.afterDelay(*wait); }
    return allowed
        .then([this, fdSpace, options, scratchSpace]() {
          return inner.tryReadMessage(fdSpace, options, scratchSpace);
        })
        .then([this](kj::Maybe<capnp::MessageReaderAndFds>&& message) {
          KJ_IF_MAYBE(m, message) {
            auto which = whichOf(*m->reader);
            messages.take();
            if (which == capnp::rpc::Message::CALL) calls.take();
            if (which == capnp::rpc::Message::FINISH) ++finished;
          } else {
            peerClosed = true;
          }
          return kj::mv(message);
        })
        .catch_([this](kj::Exception&& e) -> kj::Maybe<capnp::MessageReaderAndFds> {
          if (failure == nullptr) failure = kj::str(e.getDescription());
          kj::throwFatalException(kj::mv(e));
        });
  }
  kj::Promise<void> writeMessage(kj::ArrayPtr<const int> fds,
                                 kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments)
      override {
    // A client whose messages parse as frames but not as RPC gets an Abort from
    // the RPC system (so does a client that simply hung up: not a failure);
    // record its reason and hang up once it is sent, rather
    // than keep a dead connection open for as long as the client likes.
    KJ_IF_MAYBE(reason, peerClosed ? nullptr : abortReason(segments)) {
      if (failure == nullptr) failure = kj::mv(*reason);
      inner.writeMessage(fds, segments);
      return inner.whenSent().then([this]() {
        stream->shutdownWrite();
        stream->abortRead();
      });
    }
    countReturn(segments);
    return inner.writeMessage(fds, segments);
  }
  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override {
    for (auto segments: messages) countReturn(segments);
    return inner.writeMessages(messages);
  }
  kj::Maybe<int> getSendBufferSize() override { return inner.getSendBufferSize(); }
  kj::Promise<void> end() override { return inner.end(); }

 private:
  void countReturn(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
    capnp::SegmentArrayMessageReader reader(segments);
    if (reader.getRoot<capnp::rpc::Message>().isReturn()) ++returned;
  }

  // Hangs up on the client, every WEDGED_CHECK_INTERVAL, once it has
  // stopped keeping up its end (the RPC system then stops reading it, so this
  // cannot wait for its next message).
  kj::Promise<void> watch() {
    return timer.afterDelay(WEDGED_CHECK_INTERVAL).then([this]() -> kj::Promise<void> {
      KJ_IF_MAYBE(why, wedged()) {
        if (failure == nullptr) {
          ++services.rpcMetrics.wedgedHangups;
          failure = kj::str(*why, ": hung up");
        }
        services.log.warn(kj::str("dropped connection from ", peer.describe(), ": ",
                                  KJ_ASSERT_NONNULL(failure)));
        return kj::READY_NOW;  // ends run(): the connection is destroyed
      }
      return watch();
    });
  }

  // Ends the connection from the read side: its reason is logged as it ends.
  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> hangUp(kj::String why) {
    ++services.rpcMetrics.wedgedHangups;
    auto reason = kj::str(why, ": hung up");
    if (failure == nullptr) failure = kj::str(reason);
    return KJ_EXCEPTION(DISCONNECTED, reason);
  }

  // Why to hang up on the client, if it has stopped keeping up its end:
  // answers it does not read pile up in the outgoing queue, and answers it
  // never finishes stay in the RPC system's table.
  kj::Maybe<kj::String> wedged() {
    auto unsent = inner.unsent();
    size_t count = network.getCurrentQueueCount() + unsent.messages;
    size_t bytes = network.getCurrentQueueSize() + unsent.bytes;
    if (bytes > UNREAD_ANSWERS_MAX_BYTES || count > UNREAD_ANSWERS_MAX) {
      return kj::str("it does not read its answers (", count, " unread, ", bytes / 1024,
                     " KiB)");
    }
    if (returned > finished + UNFINISHED_ANSWERS_MAX) {
      return kj::str("it does not finish its questions (", returned - finished,
                     " answers held for it)");
    }
    return nullptr;
  }

  static capnp::rpc::Message::Which whichOf(capnp::MessageReader& message) {
    auto which = capnp::rpc::Message::UNIMPLEMENTED;
    // A message that does not even parse is the RPC system's to refuse.
    kj::runCatchingExceptions([&]() { which = message.getRoot<capnp::rpc::Message>().which(); });
    return which;
  }

  // How long to wait before reading on, if the client is over its call rate.
  kj::Maybe<kj::Duration> waitForCallRate() {
    auto now = timer.now();
    auto wait = kj::max(calls.waitAt(now), messages.waitAt(now));
    if (wait == 0 * kj::NANOSECONDS) return nullptr;
    if (!throttled) {
      throttled = true;
      ++services.rpcMetrics.throttledConnections;
      uint32_t rate = services.access.maxCallsPerSecond;
      services.log.warn(kj::str("client ", peer.describe(), " exceeds ", rate, " calls/s or ",
                                rate * MESSAGES_PER_CALL,
                                " messages/s (--max-calls-per-second); reading it more slowly"));
    }
    ++services.rpcMetrics.throttledWaits;
    return wait;
  }

  Services& services;
  kj::Timer& timer;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<Caller> caller;
  const PeerCredentials& peer;
  kj::Own<Permit> marking;  // its process's task starts, marked in the kernel, count
  BufferedMessageStream inner;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
  kj::Maybe<kj::String> failure;
  bool peerClosed = false;
  TokenBucket calls;
  TokenBucket messages;  // of every kind, calls too
  bool throttled = false;
  uint64_t returned = 0;  // answers sent
  uint64_t finished = 0;  // of which the client has said it is done with
};

// Refused connections told why at once, at most; past it, one is closed
// without a word (its descriptor is not held for REFUSED_LINGER).
constexpr uint32_t TURNING_AWAY_MAX = 64;
// After accept() fails (no descriptor left, no memory), the wait before the
// next try: from the first, doubling to the last while it keeps failing.
constexpr kj::Duration ACCEPT_BACKOFF_FIRST = 10 * kj::MILLISECONDS;
constexpr kj::Duration ACCEPT_BACKOFF_LAST = 1 * kj::SECONDS;

class ConnectionListener::Place {
 public:
  Place(ConnectionListener& listener, uid_t uid): listener(listener), uid(uid) {
    ++listener.connectionsByUid.findOrCreate(uid, [&]() {
      return kj::HashMap<uid_t, uint32_t>::Entry{uid, 0};
    });
    if (uid != 0) ++listener.connectionsOfOthers;
  }
  ~Place() noexcept(false) {
    KJ_IF_MAYBE(count, listener.connectionsByUid.find(uid)) {
      if (--*count == 0) listener.connectionsByUid.erase(uid);
    }
    if (uid != 0) --listener.connectionsOfOthers;
  }
  KJ_DISALLOW_COPY(Place);

 private:
  ConnectionListener& listener;
  uid_t uid;
};

ConnectionListener::ConnectionListener(Services& services, kj::Timer& timer,
                                       kj::Own<kj::ConnectionReceiver> receiver,
                                       capnp::ReaderOptions limits)
    : services(services),
      timer(timer),
      receiver(kj::mv(receiver)),
      limits(limits),
      errorHandler(services.log),
      connections(errorHandler) {}

ConnectionListener::~ConnectionListener() noexcept(false) {}

kj::Promise<void> ConnectionListener::run() {
  return receiver->accept().then(
      [this](kj::Own<kj::AsyncIoStream> stream) -> kj::Promise<void> {
        acceptBackoff = 0 * kj::SECONDS;
        KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { serve(kj::mv(stream)); })) {
          services.log.warn(kj::str("could not serve a connection: ", e->getDescription()));
        }
        return run();
      },
      [this](kj::Exception&& e) -> kj::Promise<void> {
        // Out of descriptors or memory: the listener stays; nobody is served
        // until it recovers, and then everyone is.
        ++services.rpcMetrics.acceptErrors;
        bool first = acceptBackoff == 0 * kj::SECONDS;
        acceptBackoff = first ? ACCEPT_BACKOFF_FIRST
                              : kj::min(acceptBackoff * 2, ACCEPT_BACKOFF_LAST);
        if (first) {
          services.log.error(kj::str("cannot accept connections (", e.getDescription(),
                                     "); trying again, backing off to 1 s"));
        }
        return timer.afterDelay(acceptBackoff).then([this]() { return run(); });
      });
}

kj::Maybe<kj::String> ConnectionListener::overCap(uid_t uid) const {
  auto& access = services.access;
  uint32_t all = connectionsOfOthers;
  KJ_IF_MAYBE(root, connectionsByUid.find(0)) { all += *root; }
  if (uid == 0) {
    if (all >= access.maxConnections) {
      return kj::str("refused: the sidecar holds ", all, " connections, its most "
                     "(--max-connections)");
    }
    return nullptr;
  }
  if (connectionsOfOthers + AccessPolicy::ROOT_CONNECTIONS >= access.maxConnections) {
    return kj::str("refused: the sidecar holds ", all, " connections; the last ",
                   AccessPolicy::ROOT_CONNECTIONS, " of its ", access.maxConnections,
                   " (--max-connections) are root's");
  }
  KJ_IF_MAYBE(mine, connectionsByUid.find(uid)) {
    if (*mine >= access.maxConnectionsPerUid) {
      return kj::str("refused: uid ", uid, " holds ", *mine, " connections, its most "
                     "(--max-connections-per-uid)");
    }
  }
  return nullptr;
}

void ConnectionListener::noteOverCap(kj::StringPtr why) {
  ++services.rpcMetrics.connectionsOverCap;
  ++overCapSinceLog;
  auto now = timer.now();
  KJ_IF_MAYBE(at, overCapLoggedAt) {
    if (now - *at < 1 * kj::SECONDS) return;
  }
  services.log.warn(kj::str("connection ", why, " (", overCapSinceLog,
                            " refused over a cap since the last such line)"));
  overCapLoggedAt = now;
  overCapSinceLog = 0;
}

void ConnectionListener::serve(kj::Own<kj::AsyncIoStream> stream) {
  auto peer = peerIdentityOf(*stream);
  uid_t uid = peer.credentials.uid;
  kj::Maybe<kj::String> refused = services.access.refusal(peer);
  if (refused != nullptr) {
    ++services.rpcMetrics.refusedConnections;
    services.log.warn(kj::str("connection ", KJ_ASSERT_NONNULL(refused)));
  } else {
    refused = overCap(uid);
    KJ_IF_MAYBE(why, refused) { noteOverCap(*why); }
  }
  KJ_IF_MAYBE(why, refused) {
    if (turningAway >= TURNING_AWAY_MAX) return;  // closed now, unanswered
    ++turningAway;
    connections.add(turnAway(kj::mv(stream), kj::mv(*why)).attach(kj::defer([this]() {
      --turningAway;
    })));
    return;
  }
  bool admin = services.access.mayAdminister(peer);
  auto caller = kj::refcounted<Caller>(kj::mv(peer), admin, services.access.maxLiveScopes);
  auto place = kj::heap<Place>(*this, uid);
  auto connection = kj::heap<Connection>(services, timer, kj::mv(stream), kj::mv(caller), limits);
  auto done = connection->run();
  connections.add(done.attach(kj::mv(connection), kj::mv(place)));
}

// The refused client gets the reason as an RPC Abort, which its RPC system
// reports as the connection's error. What it sends is never parsed, only
// discarded for up to a second, so that its first writes do not fail before it
// has read why (closing at once would answer them with EPIPE).
kj::Promise<void> ConnectionListener::turnAway(kj::Own<kj::AsyncIoStream> stream, kj::String why) {
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  auto abort = message->initRoot<capnp::rpc::Message>().initAbort();
  abort.setType(capnp::rpc::Exception::Type::FAILED);
  abort.setReason(why);
  auto& io = *stream;
  auto told = capnp::writeMessage(io, *message).then([&io]() {
    io.shutdownWrite();
    return discardUntilClosed(io);
  });
  return timer.timeoutAfter(REFUSED_LINGER, kj::mv(told))
      .catch_([](kj::Exception&&) {})  // timed out or reset: either way, done
      .attach(kj::mv(stream), kj::mv(message));
}

kj::Promise<void> ConnectionListener::discardUntilClosed(kj::AsyncIoStream& stream) {
  auto buffer = kj::heapArray<kj::byte>(4096);
  auto read = stream.tryRead(buffer.begin(), 1, buffer.size());
  return read.then([&stream](size_t n) -> kj::Promise<void> {
    if (n == 0) return kj::READY_NOW;
    return discardUntilClosed(stream);
  }).attach(kj::mv(buffer));
}

void ConnectionListener::ErrorHandler::taskFailed(kj::Exception&& exception) {
  log.warn(kj::str("connection ended with an error: ", exception.getDescription()));
}

}  // namespace tracer
