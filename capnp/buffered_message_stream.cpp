#include "buffered_message_stream.h"

#include <capnp/serialize.h>
#include <kj/debug.h>

#include <cstring>
#include <utility>

namespace tracer {

namespace {

// A dozen task messages per read; a larger frame grows it, until it is
// read. Every connection has one, so it is kept small (at 16 KiB, the
// connections of 50 clients held 800 KiB).
constexpr size_t INITIAL_BUFFER = 4 * 1024;
// Outgoing capacity kept between writes (each of the two buffers): a batch of
// a few dozen answers. A larger batch (a client's burst of starts) or answer
// (the outbox: up to 512 KiB) grows it for its write alone, or every
// connection that ever had one would hold as much: with 64 KiB kept, 50
// clients' connections held 1.2 MiB once their first tasks were answered.
constexpr size_t KEPT_OUTGOING = 4 * 1024;
constexpr uint32_t MAX_SEGMENTS = 512;  // Cap'n Proto's own limit

uint32_t readLe32(const kj::byte* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

BufferedMessageStream::BufferedMessageStream(kj::AsyncIoStream& stream)
    : stream(stream), writer(stream), buffer(kj::heapArray<kj::byte>(INITIAL_BUFFER)) {}

size_t BufferedMessageStream::completeFrameSize(const capnp::ReaderOptions& options) const {
  size_t available = filledTo - readFrom;
  if (available < 8) return 0;
  const kj::byte* frame = buffer.begin() + readFrom;
  uint32_t segments = readLe32(frame) + 1;
  KJ_REQUIRE(segments != 0 && segments < MAX_SEGMENTS, "Message has too many segments.",
             segments);
  size_t headerBytes = ((segments + 2) / 2) * 8;
  if (available < headerBytes) return 0;
  uint64_t words = 0;
  for (uint32_t i = 0; i < segments; ++i) words += readLe32(frame + 4 + 4 * i);
  KJ_REQUIRE(words <= options.traversalLimitInWords,
             "Message is too large for this receiver's limit.", words,
             options.traversalLimitInWords);
  size_t total = headerBytes + words * sizeof(capnp::word);
  return available >= total ? total : 0;
}

kj::Own<capnp::MessageReader> BufferedMessageStream::takeFrame(
    size_t bytes, const capnp::ReaderOptions& options) {
  auto words = kj::heapArray<capnp::word>(bytes / sizeof(capnp::word));
  memcpy(words.begin(), buffer.begin() + readFrom, bytes);
  readFrom += bytes;
  auto reader = kj::heap<capnp::FlatArrayMessageReader>(words, options);
  return kj::Own<capnp::MessageReader>(kj::mv(reader)).attach(kj::mv(words));
}

kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> BufferedMessageStream::tryReadMessage(
    kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
    kj::ArrayPtr<capnp::word> scratchSpace) {
  if (size_t bytes = completeFrameSize(options)) {
    return kj::Maybe<capnp::MessageReaderAndFds>(
        capnp::MessageReaderAndFds{takeFrame(bytes, options), nullptr});
  }
  // Make room: move what is left to the front (into a buffer of the initial
  // size again, once a large frame that grew it is read), grow for a frame
  // larger than the buffer.
  size_t unread = filledTo - readFrom;
  if (buffer.size() > INITIAL_BUFFER && unread < INITIAL_BUFFER) {
    auto smaller = kj::heapArray<kj::byte>(INITIAL_BUFFER);
    memcpy(smaller.begin(), buffer.begin() + readFrom, unread);
    buffer = kj::mv(smaller);
    readFrom = 0;
    filledTo = unread;
  }
  if (readFrom > 0) {
    memmove(buffer.begin(), buffer.begin() + readFrom, filledTo - readFrom);
    filledTo -= readFrom;
    readFrom = 0;
  }
  if (filledTo == buffer.size()) {
    auto larger = kj::heapArray<kj::byte>(buffer.size() * 2);
    memcpy(larger.begin(), buffer.begin(), filledTo);
    buffer = kj::mv(larger);
  }
  return stream.tryRead(buffer.begin() + filledTo, 1, buffer.size() - filledTo)
      .then([this, fdSpace, options, scratchSpace](size_t n)
                -> kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> {
        if (n == 0) {
          KJ_REQUIRE(filledTo == readFrom, "stream disconnected prematurely");
          return kj::Maybe<capnp::MessageReaderAndFds>(nullptr);
        }
        filledTo += n;
        return tryReadMessage(fdSpace, options, scratchSpace);
      });
}

kj::Promise<void> BufferedMessageStream::writeMessage(
    kj::ArrayPtr<const int> fds, kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  KJ_REQUIRE(fds.size() == 0, "this stream carries no file descriptors");
  KJ_IF_MAYBE(failure, sendFailure) { return kj::cp(*failure); }
  // Cap'n Proto's stream framing: the segment count less one, each segment's
  // size in words, padding to a word, then the segments.
  auto appendLe32 = [this](uint32_t value) {
    for (int shift = 0; shift < 32; shift += 8) queued.add(kj::byte(value >> shift));
  };
  appendLe32(segments.size() - 1);
  for (auto segment: segments) appendLe32(segment.size());
  if ((1 + segments.size()) % 2 != 0) appendLe32(0);
  for (auto segment: segments) queued.addAll(segment.asBytes());
  ++queuedMessages;
  if (!sendScheduled) {
    sendScheduled = true;
    sends.add(kj::evalLast([this]() { return sendQueued(); }));
  }
  return kj::READY_NOW;
}

kj::Promise<void> BufferedMessageStream::writeMessages(
    kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) {
  for (auto segments: messages) {
    KJ_IF_MAYBE(failure, sendFailure) { return kj::cp(*failure); }
    writeMessage(nullptr, segments);
  }
  return kj::READY_NOW;
}

kj::Promise<void> BufferedMessageStream::sendQueued() {
  if (queued.size() == 0) {
    sendScheduled = false;
    for (auto& waiter: sentWaiters) waiter->fulfill();
    sentWaiters.clear();
    return kj::READY_NOW;
  }
  // The buffers trade places, so each keeps the capacity it grew to (up to
  // KEPT_OUTGOING).
  std::swap(queued, sending);
  queued.clear();
  sendingMessages = queuedMessages;
  queuedMessages = 0;
  return stream.write(sending.begin(), sending.size()).then([this]() {
    if (sending.capacity() > KEPT_OUTGOING) sending = kj::Vector<kj::byte>();
    sending.clear();
    sendingMessages = 0;
    return sendQueued();  // what was written meanwhile
  });
}

void BufferedMessageStream::taskFailed(kj::Exception&& exception) {
  sendScheduled = false;
  for (auto& waiter: sentWaiters) waiter->reject(kj::cp(exception));
  sentWaiters.clear();
  sendFailure = kj::mv(exception);
}

kj::Promise<void> BufferedMessageStream::whenSent() {
  KJ_IF_MAYBE(failure, sendFailure) { return kj::cp(*failure); }
  if (!sendScheduled) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  sentWaiters.add(kj::mv(paf.fulfiller));
  return kj::mv(paf.promise);
}

size_t BufferedMessageStream::bufferBytes() const {
  return buffer.size() + queued.capacity() + sending.capacity();
}

BufferedMessageStream::Unsent BufferedMessageStream::unsent() const {
  // What this turn framed goes out at its end; only behind a write the
  // stream has not taken yet does it wait for the peer.
  if (sending.size() == 0) return Unsent{0, 0};
  return Unsent{queuedMessages + sendingMessages, queued.size() + sending.size()};
}

kj::Maybe<int> BufferedMessageStream::getSendBufferSize() { return writer.getSendBufferSize(); }

kj::Promise<void> BufferedMessageStream::end() {
  return whenSent().then([this]() { return writer.end(); });
}

}  // namespace tracer
