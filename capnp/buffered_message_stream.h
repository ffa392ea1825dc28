#pragma once
// A capnp::MessageStream over a byte stream that reads as much as the socket
// has in one go and cuts messages out of its buffer, and writes the messages
// sent in one turn of the event loop together. Cap'n Proto 0.9's
// AsyncIoMessageStream reads each message in two exact-size reads and writes
// each in a syscall of its own (which also wakes the peer each time); an RPC
// exchange of several small messages then costs several syscalls per wake-up,
// which dominated the sidecar's CPU per task. Framing rules and limits are
// Cap'n Proto's own (FlatArrayMessageReader validates each message).
//
// A written message is framed into the outgoing buffer at once (its promise
// resolves then, so the RPC system hands over the next one) and the buffer
// goes out once the event loop has run everything queued (kj::evalLast):
// unsent() is what a peer that does not read makes this side hold, for
// whoever bounds that.

#include <capnp/serialize-async.h>
#include <kj/async-io.h>

namespace tracer {

class BufferedMessageStream final: public capnp::MessageStream,
                                   private kj::TaskSet::ErrorHandler {
 public:
  explicit BufferedMessageStream(kj::AsyncIoStream& stream);

  using capnp::MessageStream::tryReadMessage;

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(
      kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
      kj::ArrayPtr<capnp::word> scratchSpace) override;
  kj::Promise<void> writeMessage(kj::ArrayPtr<const int> fds,
                                 kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments)
      override;
  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override;
  kj::Maybe<int> getSendBufferSize() override;
  kj::Promise<void> end() override;

  // Resolves once everything written so far is in the stream.
  kj::Promise<void> whenSent();
  // Messages and bytes written and not yet in the stream, while the stream
  // has not taken the last write (the peer is not reading): none otherwise.
  struct Unsent {
    size_t messages, bytes;
  };
  Unsent unsent() const;
  // Bytes its buffers hold, in and out: between large messages 4 KiB in
  // and at most 8 KiB out, whatever the largest was.
  size_t bufferBytes() const;

 private:
  void taskFailed(kj::Exception&& exception) override;
  kj::Promise<void> sendQueued();

  // Bytes of the complete message at the front of the buffer, 0 if incomplete.
  size_t completeFrameSize(const capnp::ReaderOptions& options) const;
  kj::Own<capnp::MessageReader> takeFrame(size_t bytes, const capnp::ReaderOptions& options);

  kj::AsyncIoStream& stream;
  capnp::AsyncIoMessageStream writer;
  kj::Array<kj::byte> buffer;
  size_t readFrom = 0;  // unread bytes are buffer[readFrom, filledTo)
  size_t filledTo = 0;

  kj::Vector<kj::byte> queued;   // framed messages not handed to the stream yet
  kj::Vector<kj::byte> sending;  // handed to the stream, until it has written them
  size_t queuedMessages = 0, sendingMessages = 0;
  bool sendScheduled = false;
  kj::Maybe<kj::Exception> sendFailure;  // every later write fails with it
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> sentWaiters;
  kj::TaskSet sends{*this};  // last: cancelled before the buffers go
};

}  // namespace tracer
