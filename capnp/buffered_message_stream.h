#pragma once
// A capnp::MessageStream over a byte stream that reads as much as the socket
// has in one go and cuts messages out of its buffer. Cap'n Proto 0.9's
// AsyncIoMessageStream reads each message in two exact-size reads; an RPC
// exchange of several small messages then costs several syscalls per wake-up,
// which dominated the sidecar's CPU per task. Framing rules and limits are
// Cap'n Proto's own (FlatArrayMessageReader validates each message).

#include <capnp/serialize-async.h>
#include <kj/async-io.h>

namespace tracer {

class BufferedMessageStream final: public capnp::MessageStream {
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

 private:
  // Bytes of the complete message at the front of the buffer, 0 if incomplete.
  size_t completeFrameSize(const capnp::ReaderOptions& options) const;
  kj::Own<capnp::MessageReader> takeFrame(size_t bytes, const capnp::ReaderOptions& options);

  kj::AsyncIoStream& stream;
  capnp::AsyncIoMessageStream writer;
  kj::Array<kj::byte> buffer;
  size_t readFrom = 0;  // unread bytes are buffer[readFrom, filledTo)
  size_t filledTo = 0;
};

}  // namespace tracer
