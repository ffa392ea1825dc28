#include "rpc/connection_listener.h"

#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize-async.h>
#include <kj/debug.h>

#include "buffered_message_stream.h"
#include "rpc/peer_credentials.h"
#include "rpc/sidecar_server.h"

namespace tracer {

namespace {

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
class ConnectionListener::Connection final: public capnp::MessageStream {
 public:
  Connection(Services& services, kj::Own<kj::AsyncIoStream> stream, PeerCredentials peer,
             capnp::ReaderOptions limits)
      : services(services),
        stream(kj::mv(stream)),
        peer(peer),
        inner(*this->stream),
        network(*this, capnp::rpc::twoparty::Side::SERVER, limits),
        rpc(capnp::makeRpcServer(network, makeSidecarServer(services, peer))) {
    ++services.connectedClients;
  }
  ~Connection() noexcept(false) { --services.connectedClients; }

  kj::Promise<void> run() {
    return network.onDisconnect().then([this]() {
      KJ_IF_MAYBE(reason, failure) {
        services.log.warn(kj::str("dropped connection from ", peer.describe(), ": ", *reason));
      } else {
        services.log.debug(kj::str("client ", peer.describe(), " disconnected"));
      }
    });
  }

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(
      kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
      kj::ArrayPtr<capnp::word> scratchSpace) override {
    return inner.tryReadMessage(fdSpace, options, scratchSpace)
        .then([this](kj::Maybe<capnp::MessageReaderAndFds>&& message) {
          if (message == nullptr) peerClosed = true;
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
      return inner.writeMessage(fds, segments).then([this]() {
        stream->shutdownWrite();
        stream->abortRead();
      });
    }
    return inner.writeMessage(fds, segments);
  }
  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override {
    return inner.writeMessages(messages);
  }
  kj::Maybe<int> getSendBufferSize() override { return inner.getSendBufferSize(); }
  kj::Promise<void> end() override { return inner.end(); }

 private:
  Services& services;
  kj::Own<kj::AsyncIoStream> stream;
  PeerCredentials peer;
  BufferedMessageStream inner;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
  kj::Maybe<kj::String> failure;
  bool peerClosed = false;
};

ConnectionListener::ConnectionListener(Services& services,
                                       kj::Own<kj::ConnectionReceiver> receiver,
                                       capnp::ReaderOptions limits)
    : services(services),
      receiver(kj::mv(receiver)),
      limits(limits),
      errorHandler(services.log),
      connections(errorHandler) {}

ConnectionListener::~ConnectionListener() noexcept(false) {}

kj::Promise<void> ConnectionListener::run() {
  return receiver->accept().then([this](kj::Own<kj::AsyncIoStream> stream) {
    serve(kj::mv(stream));
    return run();
  });
}

void ConnectionListener::serve(kj::Own<kj::AsyncIoStream> stream) {
  auto peer = peerCredentialsOf(*stream);
  auto connection = kj::heap<Connection>(services, kj::mv(stream), peer, limits);
  auto done = connection->run();
  connections.add(done.attach(kj::mv(connection)));
}

void ConnectionListener::ErrorHandler::taskFailed(kj::Exception&& exception) {
  log.warn(kj::str("connection ended with an error: ", exception.getDescription()));
}

}  // namespace tracer
