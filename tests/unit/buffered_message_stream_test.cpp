// BufferedMessageStream over a real socketpair: framing across reads, batches,
// growth, and Cap'n Proto's limits.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <catch2/catch.hpp>
#include <kj/async-io.h>

#include "buffered_message_stream.h"
#include "tracer.capnp.h"

namespace {

void buildTaskInfo(capnp::MessageBuilder& message, kj::StringPtr id, size_t tags) {
  auto info = message.initRoot<tracer::proto::TaskRunInfo>();
  info.setTaskRunId(id);
  auto list = info.initTags(tags);
  for (size_t i = 0; i < tags; ++i) list.set(i, "some-tag-text-to-make-it-longer");
}

kj::Array<capnp::word> taskInfo(kj::StringPtr id, size_t tags) {
  capnp::MallocMessageBuilder message;
  buildTaskInfo(message, id, tags);
  return capnp::messageToFlatArray(message);
}

void writeTaskInfo(tracer::BufferedMessageStream& out, kj::StringPtr id, size_t tags,
                   kj::WaitScope& wait) {
  capnp::MallocMessageBuilder message;
  buildTaskInfo(message, id, tags);
  out.writeMessage(nullptr, message.getSegmentsForOutput()).wait(wait);
}

kj::String readId(tracer::BufferedMessageStream& in, kj::WaitScope& wait) {
  auto message = KJ_ASSERT_NONNULL(in.tryReadMessage().wait(wait));
  return kj::str(message->getRoot<tracer::proto::TaskRunInfo>().getTaskRunId());
}

}  // namespace

TEST_CASE("messages written byte by byte, in batches and larger than the buffer all arrive") {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  tracer::BufferedMessageStream in(*pipe.ends[1]);

  // Three messages in one write: one read serves all three.
  auto a = taskInfo("a", 1), b = taskInfo("b", 2), c = taskInfo("c", 3);
  kj::Vector<kj::byte> batch;
  for (auto* m: {&a, &b, &c}) batch.addAll(m->asBytes());
  pipe.ends[0]->write(batch.begin(), batch.size()).wait(io.waitScope);
  CHECK(readId(in, io.waitScope) == "a");
  CHECK(readId(in, io.waitScope) == "b");
  CHECK(readId(in, io.waitScope) == "c");

  // One message dribbled in a byte at a time.
  auto d = taskInfo("d", 1);
  auto reading = in.tryReadMessage();
  for (auto byte: d.asBytes()) pipe.ends[0]->write(&byte, 1).wait(io.waitScope);
  auto message = KJ_ASSERT_NONNULL(reading.wait(io.waitScope));
  CHECK(message->getRoot<tracer::proto::TaskRunInfo>().getTaskRunId() == "d");

  // A message four times the initial 64 KiB buffer.
  auto big = taskInfo("big", 8000);
  REQUIRE(big.asBytes().size() > 256 * 1024);
  auto writing = pipe.ends[0]->write(big.begin(), big.asBytes().size());
  CHECK(readId(in, io.waitScope) == "big");
  writing.wait(io.waitScope);

  // Clean end of stream between messages: no message, no error.
  pipe.ends[0]->shutdownWrite();
  CHECK(in.tryReadMessage().wait(io.waitScope) == nullptr);
}

TEST_CASE("a stream that ends inside a message is an error") {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  tracer::BufferedMessageStream in(*pipe.ends[1]);
  auto a = taskInfo("a", 1);
  pipe.ends[0]->write(a.begin(), a.asBytes().size() - 8).wait(io.waitScope);
  pipe.ends[0]->shutdownWrite();
  CHECK_THROWS_WITH(in.tryReadMessage().wait(io.waitScope),
                    Catch::Contains("stream disconnected prematurely"));
}

TEST_CASE("frames over the reader's limits are refused before they are read") {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  tracer::BufferedMessageStream in(*pipe.ends[1]);
  capnp::ReaderOptions limits;
  limits.traversalLimitInWords = 1024;
  uint32_t header[2] = {0, 1u << 20};  // one segment of 8 MiB
  pipe.ends[0]->write(header, sizeof(header)).wait(io.waitScope);
  CHECK_THROWS_WITH(in.tryReadMessage(limits).wait(io.waitScope),
                    Catch::Contains("Message is too large"));

  auto other = io.provider->newTwoWayPipe();
  tracer::BufferedMessageStream second(*other.ends[1]);
  uint32_t tooMany[2] = {600, 1};
  other.ends[0]->write(tooMany, sizeof(tooMany)).wait(io.waitScope);
  CHECK_THROWS_WITH(second.tryReadMessage().wait(io.waitScope),
                    Catch::Contains("too many segments"));
}

TEST_CASE("messages written in one turn of the event loop go out in one write") {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  tracer::BufferedMessageStream out(*pipe.ends[0]);
  auto a = taskInfo("a", 1), b = taskInfo("b", 2), c = taskInfo("c", 3);
  size_t total = 0;
  for (auto* m: {&a, &b, &c}) {
    kj::ArrayPtr<const capnp::word> segment = *m;
    // Cap'n Proto's framing of a one-segment message: what messageToFlatArray made.
    auto segments = kj::heapArray<kj::ArrayPtr<const capnp::word>>(
        {segment.slice(1, segment.size())});
    out.writeMessage(nullptr, segments).wait(io.waitScope);  // framed, not yet sent
    total += m->asBytes().size();
  }
  // Nothing waits for the peer yet: this turn's messages go out at its end.
  CHECK(out.unsent().messages == 0);
  out.whenSent().wait(io.waitScope);

  // All three in the socket at once, byte for byte what messageToFlatArray frames.
  kj::Vector<kj::byte> expected;
  for (auto* m: {&a, &b, &c}) expected.addAll(m->asBytes());
  auto received = kj::heapArray<kj::byte>(total);
  pipe.ends[1]->read(received.begin(), total).wait(io.waitScope);
  CHECK(received.asPtr() == expected.asPtr());
}

TEST_CASE("what waits behind a write the peer does not take is unsent") {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  tracer::BufferedMessageStream out(*pipe.ends[0]);
  auto big = taskInfo("big", 40000);  // over a megabyte: more than the socket buffers
  kj::ArrayPtr<const capnp::word> segment = big;
  auto segments = kj::heapArray<kj::ArrayPtr<const capnp::word>>({segment.slice(1, segment.size())});
  out.writeMessage(nullptr, segments).wait(io.waitScope);
  io.waitScope.poll();  // the write starts and stalls: nobody reads
  out.writeMessage(nullptr, segments).wait(io.waitScope);
  CHECK(out.unsent().messages == 2);
  CHECK(out.unsent().bytes == 2 * big.asBytes().size());
}

TEST_CASE("a stream that cannot be written fails the writes after it") {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  tracer::BufferedMessageStream out(*pipe.ends[0]);
  pipe.ends[1] = nullptr;  // the peer hangs up
  auto a = taskInfo("a", 1);
  kj::ArrayPtr<const capnp::word> segment = a;
  auto segments = kj::heapArray<kj::ArrayPtr<const capnp::word>>({segment.slice(1, segment.size())});
  out.writeMessage(nullptr, segments).wait(io.waitScope);
  CHECK_THROWS(out.whenSent().wait(io.waitScope));
  CHECK_THROWS(out.writeMessage(nullptr, segments).wait(io.waitScope));
}

TEST_CASE("the buffers shrink back once a large message is through, either way") {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  tracer::BufferedMessageStream near(*pipe.ends[0]);
  tracer::BufferedMessageStream far(*pipe.ends[1]);
  size_t idle = near.bufferBytes();
  CHECK(idle <= 4 * 1024);

  writeTaskInfo(near, "big", 40000, io.waitScope);  // over a megabyte
  CHECK(readId(far, io.waitScope) == "big");
  near.whenSent().wait(io.waitScope);
  writeTaskInfo(near, "small", 1, io.waitScope);
  CHECK(readId(far, io.waitScope) == "small");
  near.whenSent().wait(io.waitScope);

  // Each holds what it held before, give or take a small batch, not the megabyte.
  CHECK(near.bufferBytes() <= idle + 8 * 1024);
  CHECK(far.bufferBytes() <= idle + 8 * 1024);
}
