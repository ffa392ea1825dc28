// libFuzzer target: the sidecar's RPC server as a client reaches it, through a
// real Unix socket. The server stack is built the way main.cpp builds it
// (ConnectionListener with main's reader limits, the /proc collector since BPF
// cannot be loaded per input, built-in policies, History and Outbox in a
// scratch directory, no Prefect API) and runs on a thread of its own, like the
// daemon apart from its clients; it serves input after input. Each input is
// one client connection: connect, send, half-close, read until the server
// hangs up, close.
//
// The first byte picks how the rest becomes bytes on the socket:
//   0 raw     as is: framing errors, truncated and oversized messages.
//   1 framed  correctly framed messages of arbitrary words: what the RPC layer
//             and the handlers make of well-framed nonsense.
//   2 rpc     genuine rpc.capnp messages (Bootstrap, Call, Finish, Release,
//             Disembargo) addressed to tracer.capnp's interfaces, params filled
//             field by field, so openFlowRun, startTask, finishTask, finish,
//             status and the Admin methods really run.
// Input is read front to back and reads as zeros past its end, so every
// prefix of an input is an input; the byte grammar of each mode is next to
// the code that reads it (seeds in rpc_corpus/ follow it; tests/fuzz/rpc_corpus_seeds.py
// writes them: re-run it when tracer.capnp or this grammar changes).
//
// Besides ASan and UBSan, two checks trap (the reason is printed as a
// SUMMARY line): once the client is gone the server must let go of it (no
// connection counted, no flow run or task live: a scope kept by the RPC layer
// would never be reported); and no inline KJ or Cap'n Proto precondition may
// fail in sidecar code (see PreconditionTrap).
//
// The sidecar logs every dropped connection to stderr: run with
// -close_fd_mask=2 to keep that out of libFuzzer's output (crash reports
// still show). To see a reproducer's log, run it without.

#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/rpc.capnp.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <dirent.h>
#include <fcntl.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <poll.h>
#include <sanitizer/common_interface_defs.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "observe/attribution_table.h"
#include "observe/procfs_collector.h"
#include "runs/conductor.h"
#include "observe/sampler.h"
#include "metrics/task_metrics.h"
#include "ops/log.h"
#include "ops/unix_socket.h"
#include "runs/advisor.h"
#include "report/artifact_publisher.h"
#include "report/cost_rollup.h"
#include "rpc/access_policy.h"
#include "rpc/connection_listener.h"
#include "metrics/rpc_metrics.h"
#include "rpc/services.h"
#include "store/history.h"
#include "store/outbox.h"
#include "tracer.capnp.h"

namespace tracer {
namespace {

// How long a client waits for the server to answer or hang up; no input
// needs more than a few milliseconds.
constexpr kj::Duration HANG_UP_BOUND = 200 * kj::MILLISECONDS;
// How many milliseconds the server gets to let go of a connection the client
// closed: generous, as the two threads share a loaded machine.
constexpr int LET_GO_TRIES = 2000;

// The fuzz input, consumed front to back; zeros once it runs out.
class Input {
 public:
  explicit Input(kj::ArrayPtr<const kj::byte> bytes): rest(bytes) {}

  bool empty() const { return rest.size() == 0; }

  uint8_t u8() {
    if (rest.size() == 0) return 0;
    uint8_t value = rest[0];
    rest = rest.slice(1, rest.size());
    return value;
  }

  // Little-endian, like the wire format.
  template <typename T>
  T number() {
    uint64_t bits = 0;
    for (size_t i = 0; i < sizeof(T); ++i) bits |= static_cast<uint64_t>(u8()) << (8 * i);
    T value;
    memcpy(&value, &bits, sizeof(T));  // the low bytes: little-endian host
    return value;
  }

  // Up to `size` bytes (fewer at the end of the input).
  kj::ArrayPtr<const kj::byte> take(size_t size) {
    size = kj::min(size, rest.size());
    auto taken = rest.slice(0, size);
    rest = rest.slice(size, rest.size());
    return taken;
  }

  kj::ArrayPtr<const kj::byte> rest;
};

// A text from the input: length byte (0-63), then the bytes.
kj::String text(Input& in) {
  auto bytes = in.take(in.u8() & 63);
  return kj::heapString(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

void appendFrame(kj::Vector<kj::byte>& out, kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>
                                                segments) {
  auto words = capnp::messageToFlatArray(segments);
  out.addAll(words.asBytes());
}

// ---- mode framed ----------------------------------------------------------
// message := count:u8 (1 + count % 4 segments), size:u8 per segment (words),
//            then each segment's words (zero-padded at the end of the input).
kj::Array<kj::byte> framedMessages(Input& in) {
  kj::Vector<kj::byte> out;
  while (!in.empty()) {
    uint count = 1 + in.u8() % 4;
    kj::Vector<kj::Array<capnp::word>> segments;
    for (uint i = 0; i < count; ++i) segments.add(kj::heapArray<capnp::word>(in.u8()));
    for (auto& segment: segments) {
      auto bytes = in.take(segment.size() * sizeof(capnp::word));
      memset(segment.begin(), 0, segment.size() * sizeof(capnp::word));
      memcpy(segment.begin(), bytes.begin(), bytes.size());
    }
    kj::Vector<kj::ArrayPtr<const capnp::word>> table;
    for (auto& segment: segments) table.add(segment);
    appendFrame(out, table);
  }
  return out.releaseAsArray();
}

// ---- mode rpc -------------------------------------------------------------

constexpr uint DEPTH_LIMIT = 4;

// A value of `type`, from the input:
//   Bool: u8 & 1. Int32: kind:u8 % 4 -> 0 four bytes, 1 this process's pid
//   (so an input can name a thread that exists in every run), 2 one byte,
//   3 -1. Other numbers: their bytes. Enums: u8 % 8 below 0xf0 (RunState has
//   four values), else two bytes. Text, Data: see text(). Lists: length
//   u8 % 5, then the elements. Interfaces, AnyPointer: left null.
void fillStruct(capnp::DynamicStruct::Builder out, Input& in, uint depth);

capnp::DynamicValue::Reader scalar(capnp::Type type, Input& in, kj::String& storage) {
  switch (type.which()) {
    case capnp::schema::Type::BOOL: return (in.u8() & 1) != 0;
    case capnp::schema::Type::INT8: return in.number<int8_t>();
    case capnp::schema::Type::INT16: return in.number<int16_t>();
    case capnp::schema::Type::INT32:
      switch (in.u8() % 4) {
        case 0: return in.number<int32_t>();
        case 1: return static_cast<int32_t>(getpid());
        case 2: return static_cast<int32_t>(in.u8());
        default: return -1;
      }
    case capnp::schema::Type::INT64: return in.number<int64_t>();
    case capnp::schema::Type::UINT8: return in.u8();
    case capnp::schema::Type::UINT16: return in.number<uint16_t>();
    case capnp::schema::Type::UINT32: return in.number<uint32_t>();
    case capnp::schema::Type::UINT64: return in.number<uint64_t>();
    case capnp::schema::Type::FLOAT32: return in.number<float>();
    case capnp::schema::Type::FLOAT64: return in.number<double>();
    case capnp::schema::Type::ENUM: {
      uint8_t pick = in.u8();
      uint16_t raw = pick < 0xf0 ? pick % 8 : in.number<uint16_t>();
      return capnp::DynamicEnum(type.asEnum(), raw);
    }
    case capnp::schema::Type::TEXT:
      storage = text(in);
      return capnp::Text::Reader(storage.cStr(), storage.size());
    case capnp::schema::Type::DATA:
      storage = text(in);
      return capnp::Data::Reader(storage.asBytes());
    default: return capnp::DynamicValue::Reader();  // VOID: nothing to set
  }
}

bool isPointer(capnp::Type type) {
  auto which = type.which();
  return which == capnp::schema::Type::LIST || which == capnp::schema::Type::STRUCT ||
         which == capnp::schema::Type::INTERFACE || which == capnp::schema::Type::ANY_POINTER;
}

void fillList(capnp::DynamicList::Builder list, Input& in, uint depth) {
  auto element = list.getSchema().getElementType();
  for (uint i = 0; i < list.size(); ++i) {
    if (element.isStruct()) {
      fillStruct(list[i].as<capnp::DynamicStruct>(), in, depth + 1);
    } else if (element.isList()) {
      if (depth < DEPTH_LIMIT) {
        fillList(list.init(i, in.u8() % 5).as<capnp::DynamicList>(), in, depth + 1);
      }
    } else if (!isPointer(element)) {
      kj::String storage;
      list.set(i, scalar(element, in, storage));
    }
  }
}

void fillField(capnp::DynamicStruct::Builder out, capnp::StructSchema::Field field, Input& in,
               uint depth) {
  if (field.getProto().isGroup()) {
    fillStruct(out.init(field).as<capnp::DynamicStruct>(), in, depth + 1);
    return;
  }
  auto type = field.getType();
  if (type.isStruct()) {
    if (depth < DEPTH_LIMIT) fillStruct(out.init(field).as<capnp::DynamicStruct>(), in, depth + 1);
  } else if (type.isList()) {
    if (depth < DEPTH_LIMIT) {
      fillList(out.init(field, in.u8() % 5).as<capnp::DynamicList>(), in, depth + 1);
    }
  } else if (!isPointer(type)) {
    kj::String storage;
    auto value = scalar(type, in, storage);
    if (value.getType() != capnp::DynamicValue::UNKNOWN) out.set(field, value);
  }
}

// Every non-union field in declaration order; then, if the struct has a
// union, which member (u8) and its value.
void fillStruct(capnp::DynamicStruct::Builder out, Input& in, uint depth) {
  auto schema = out.getSchema();
  for (auto field: schema.getNonUnionFields()) fillField(out, field, in, depth);
  auto members = schema.getUnionFields();
  if (members.size() > 0) fillField(out, members[in.u8() % members.size()], in, depth);
}

// A struct the params type knows nothing about: dataWords:u8 % 4,
// pointers:u8 % 4, the data words, then per pointer kind:u8 % 4 -> null,
// text, struct (recursively), data.
void fillRawStruct(capnp::AnyPointer::Builder out, Input& in, uint depth) {
  uint16_t dataWords = in.u8() % 4;
  uint16_t pointers = in.u8() % 4;
  auto content = out.initAsAnyStruct(dataWords, pointers);
  auto data = in.take(content.getDataSection().size());
  memcpy(content.getDataSection().begin(), data.begin(), data.size());
  auto section = content.getPointerSection();
  for (uint i = 0; i < section.size(); ++i) {
    switch (in.u8() % 4) {
      case 0: break;
      case 1: {
        auto value = text(in);
        section[i].setAs<capnp::Text>(capnp::Text::Reader(value.cStr(), value.size()));
        break;
      }
      case 2:
        if (depth < DEPTH_LIMIT) fillRawStruct(section[i], in, depth + 1);
        break;
      default: section[i].setAs<capnp::Data>(text(in).asBytes()); break;
    }
  }
}

// The interfaces the sidecar serves, which a Call's interface id picks from.
struct Interfaces {
  capnp::InterfaceSchema schemas[3] = {capnp::Schema::from<proto::Sidecar>(),
                                       capnp::Schema::from<proto::FlowRunScope>(),
                                       capnp::Schema::from<proto::Admin>()};
};

// Builds a connection's worth of client messages. Question 0 is always a
// Bootstrap, as from every real client; then until the input runs out:
//   op:u8 % 8 -> 0-3 Call, 4 Finish, 5 Release, 6 Bootstrap, 7 Disembargo
// Call: flags:u8 target interface:u8 [id:u64] method:u8 params [capDescriptor]
//   flags: bits 0-1 target (3: an imported cap, else a promised answer),
//   bit 2 raw params, bit 3 a cap descriptor in the cap table, bits 4-5
//   sendResultsTo (2 yourself, 3 third party, else caller), bit 6
//   allowThirdPartyTailCall, bit 7 question id from the input (u32) instead
//   of the next one.
//   target: promised answer -> question:u8 (index into the questions asked
//   so far), transform length:u8 % 3, per op u8 (0xff noop, else
//   getPointerField(u8 % 4)); imported cap -> id:u8.
//   interface % 4: Sidecar, FlowRunScope, Admin, or any (u64).
//   method: u8 % 8. params: the method's params struct filled by
//   fillStruct() when interface and method are real and bit 2 is clear,
//   fillRawStruct() otherwise.
//   capDescriptor: kind:u8 % 4 (senderHosted, senderPromise, receiverHosted,
//   receiverAnswer) id:u8.
// Finish: question:u8 (index) releaseResultCaps:u8 & 1.
// Release: id:u8 referenceCount:u8 % 4.
// Disembargo: target (as a Call's, with flags 0) context:u8 % 4
//   (senderLoopback, receiverLoopback, accept, provide) id:u8.
class RpcScript {
 public:
  explicit RpcScript(Input& in): in(in) {}

  kj::Array<kj::byte> build() {
    bootstrap();
    while (!in.empty()) {
      switch (in.u8() % 8) {
        case 0: case 1: case 2: case 3: call(); break;
        case 4: finish(); break;
        case 5: release(); break;
        case 6: bootstrap(); break;
        default: disembargo(); break;
      }
    }
    return out.releaseAsArray();
  }

 private:
  uint32_t nextQuestion() { return asked++; }
  uint32_t pickQuestion() { return in.u8() % asked; }  // the Bootstrap makes asked >= 1

  void send(capnp::MessageBuilder& message) { appendFrame(out, message.getSegmentsForOutput()); }

  void bootstrap() {
    capnp::MallocMessageBuilder message;
    message.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(nextQuestion());
    send(message);
  }

  void target(capnp::rpc::MessageTarget::Builder dest, uint8_t flags) {
    if ((flags & 3) == 3) {
      dest.setImportedCap(in.u8());
      return;
    }
    auto promised = dest.initPromisedAnswer();
    promised.setQuestionId(pickQuestion());
    auto transform = promised.initTransform(in.u8() % 3);
    for (auto op: transform) {
      uint8_t raw = in.u8();
      if (raw == 0xff) {
        op.setNoop();
      } else {
        op.setGetPointerField(raw % 4);
      }
    }
  }

  void call() {
    capnp::MallocMessageBuilder message;
    auto call = message.initRoot<capnp::rpc::Message>().initCall();
    uint8_t flags = in.u8();
    call.setQuestionId((flags & 0x80) != 0 ? in.number<uint32_t>() : nextQuestion());
    target(call.initTarget(), flags);
    uint pick = in.u8() % 4;
    kj::Maybe<capnp::InterfaceSchema> known;
    if (pick < 3) {
      known = interfaces.schemas[pick];
      call.setInterfaceId(interfaces.schemas[pick].getProto().getId());
    } else {
      call.setInterfaceId(in.number<uint64_t>());
    }
    uint16_t method = in.u8() % 8;
    call.setMethodId(method);
    auto params = call.initParams();
    kj::Maybe<capnp::StructSchema> paramType;
    KJ_IF_MAYBE(schema, known) {
      auto methods = schema->getMethods();
      if (method < methods.size() && (flags & 4) == 0) paramType = methods[method].getParamType();
    }
    KJ_IF_MAYBE(type, paramType) {
      fillStruct(params.getContent().initAs<capnp::DynamicStruct>(*type), in, 0);
    } else {
      fillRawStruct(params.getContent(), in, 0);
    }
    if ((flags & 8) != 0) capDescriptor(params.initCapTable(1)[0]);
    auto sendTo = call.getSendResultsTo();
    switch ((flags >> 4) & 3) {
      case 2: sendTo.setYourself(); break;
      case 3: sendTo.initThirdParty(); break;
      default: sendTo.setCaller(); break;
    }
    call.setAllowThirdPartyTailCall((flags & 0x40) != 0);
    send(message);
  }

  void capDescriptor(capnp::rpc::CapDescriptor::Builder dest) {
    uint8_t kind = in.u8() % 4;
    uint8_t id = in.u8();
    switch (kind) {
      case 0: dest.setSenderHosted(id); break;
      case 1: dest.setSenderPromise(id); break;
      case 2: dest.setReceiverHosted(id); break;
      default: {
        auto answer = dest.initReceiverAnswer();
        answer.setQuestionId(id % asked);
        break;
      }
    }
  }

  void finish() {
    capnp::MallocMessageBuilder message;
    auto finish = message.initRoot<capnp::rpc::Message>().initFinish();
    finish.setQuestionId(pickQuestion());
    finish.setReleaseResultCaps((in.u8() & 1) != 0);
    send(message);
  }

  void release() {
    capnp::MallocMessageBuilder message;
    auto release = message.initRoot<capnp::rpc::Message>().initRelease();
    release.setId(in.u8());
    release.setReferenceCount(in.u8() % 4);
    send(message);
  }

  void disembargo() {
    capnp::MallocMessageBuilder message;
    auto disembargo = message.initRoot<capnp::rpc::Message>().initDisembargo();
    target(disembargo.initTarget(), 0);
    auto context = disembargo.initContext();
    uint8_t kind = in.u8() % 4;
    uint8_t id = in.u8();
    switch (kind) {
      case 0: context.setSenderLoopback(id); break;
      case 1: context.setReceiverLoopback(id); break;
      case 2: context.setAccept(); break;
      default: context.setProvide(id); break;
    }
    send(message);
  }

  Input& in;
  Interfaces interfaces;
  uint32_t asked = 0;  // questions 0 .. asked-1 were asked, in order
  kj::Vector<kj::byte> out;
};

// ---- the server and a client ----------------------------------------------

// Where History, Outbox and the socket live for this process; removed at exit.
class ScratchDirectory {
 public:
  ScratchDirectory() {
    const char* base = getenv("TMPDIR");
    auto pattern = kj::str(base != nullptr && *base != '\0' ? base : "/tmp",
                           "/rpc_server_fuzzer.XXXXXX");
    if (mkdtemp(pattern.begin()) == nullptr) KJ_FAIL_SYSCALL("mkdtemp", errno, pattern);
    path = kj::mv(pattern);
  }
  ~ScratchDirectory() noexcept(false) {
    if (DIR* dir = opendir(path.cStr())) {
      while (auto* entry = readdir(dir)) {
        if (entry->d_name[0] != '.') unlink(file(entry->d_name).cStr());
      }
      closedir(dir);
    }
    rmdir(path.cStr());
  }
  KJ_DISALLOW_COPY(ScratchDirectory);

  kj::String file(kj::StringPtr name) const { return kj::str(path, '/', name); }

 private:
  kj::String path;
};

// Printed where sanitizer reports go, so it shows with -close_fd_mask=2 too.
[[noreturn]] void fail(kj::StringPtr why) {
  __sanitizer_report_error_summary(kj::str("SUMMARY: rpc_server_fuzzer: ", why).cStr());
  abort();
}

// The sidecar's serving half, built as main() builds it with default flags,
// minus what needs BPF, a Prefect API or systemd. The caller is this process,
// root: every connection is allowed and may use Admin.
class SidecarStack {
 public:
  SidecarStack(kj::AsyncIoContext& io, Log& log, const ScratchDirectory& scratch)
      : io(io),
        history(scratch.file("history.db").cStr(), 200),
        outbox(scratch.file("outbox.db").cStr()),
        advisor(log, "", history),
        publisher(log, outbox, false, []() {}, 30ll * 24 * 3600 * 1000000000),
        collector(makeProcfsCollector(kj::str("fuzzing: BPF is not loaded per input"),
                                      kj::str("no taskstats: exits are not fuzzed"))),
        conductor(advisor, taskMetrics, publisher, io.provider->getTimer(), log),
        table(*collector, clock, conductor, log),
        costs(history.path(), history.runsKept()),
        services{table, table, advisor, publisher, costs, access, rpcMetrics, log, clock,
                 clock.now()},
        socket(kj::heap<ListeningSocket>(*io.lowLevelProvider, scratch.file("tracer.sock"),
                                         nullptr)),
        listener(services, io.provider->getTimer(), socket->takeReceiver(), limits()) {
    KJ_REQUIRE(advisor.startupError().empty(), advisor.startupError().c_str());
  }

  // Observes and accepts until cancelled.
  kj::Promise<void> run() {
    auto observing =
        collector->run(table).exclusiveJoin(sampleForever(table, io.provider->getTimer()));
    return listener.run().exclusiveJoin(kj::mv(observing)).then(
        []() { fail("the listener or the sampler stopped"); },
        [](kj::Exception&& e) { fail(kj::str("serving failed: ", e.getDescription())); });
  }

  // Nothing of any connection is left: not the connection, nor a live flow
  // run or task (every scope ends with its connection).
  bool idle() {
    capnp::MallocMessageBuilder message;
    auto status = message.initRoot<proto::SidecarStatus>();
    table.fillStatus(status);
    return services.connectedClients == 0 && status.getLiveFlowRuns() == 0 &&
           status.getLiveTasks() == 0;
  }

 private:
  static capnp::ReaderOptions limits() {
    capnp::ReaderOptions limits;  // as sidecar/main.cpp sets them
    limits.traversalLimitInWords = 64 * 1024;
    limits.nestingLimit = 16;
    return limits;
  }

  kj::AsyncIoContext& io;
  const kj::MonotonicClock& clock = kj::systemPreciseMonotonicClock();
  History history;
  Outbox outbox;
  Advisor advisor;
  ArtifactPublisher publisher;
  kj::Own<Collector> collector;
  AccessPolicy access;  // main's defaults: limits per connection, nobody refused
  TaskMetrics taskMetrics{500};
  RpcMetrics rpcMetrics{clock};
  Conductor conductor;
  AttributionTable table;
  CostRollup costs;
  Services services;
  kj::Own<ListeningSocket> socket;  // removes the socket file
  ConnectionListener listener;
};

// KJ's and Cap'n Proto's inline accessors check their preconditions (list
// index in range, union member set, ...) in code built with KJ_DEBUG, as this
// target is (tests/CMakeLists.txt). A failed one throws like any error and
// would reach the client as an RPC error; it is a bug of the calling code, and
// ASan cannot see the read it prevents (Cap'n Proto itself is not
// instrumented), so it traps.
class PreconditionTrap final: public kj::ExceptionCallback {
 public:
  void onRecoverableException(kj::Exception&& exception) override {
    check(exception);
    next.onRecoverableException(kj::mv(exception));
  }
  void onFatalException(kj::Exception&& exception) override {
    check(exception);
    next.onFatalException(kj::mv(exception));
  }

 private:
  static void check(const kj::Exception& exception) {
    kj::StringPtr file = exception.getFile();
    bool inlineHeader = file.endsWith(".h") && (strstr(file.cStr(), "include/kj/") != nullptr ||
                                                 strstr(file.cStr(), "include/capnp/") != nullptr ||
                                                 file.endsWith(".capnp.h"));
    if (inlineHeader) {
      fail(kj::str("precondition failed at ", file, ":", exception.getLine(), ": ",
                   exception.getDescription()));
    }
  }
};

// Runs the sidecar stack on a thread of its own, as the daemon runs apart from
// its clients. It has to be a thread's stack anyway: Log is that thread's
// kj::ExceptionCallback, which KJ requires to live on the stack.
class ServerThread {
 public:
  ServerThread(): socketPath(scratch.file("tracer.sock")), thread([this]() { serve(); }) {
    auto lock = running.lockExclusive();
    lock.wait([](const Running& r) { return r.executor != nullptr || r.failure != nullptr; });
    KJ_IF_MAYBE(why, lock->failure) { fail(kj::str("the sidecar stack did not start: ", *why)); }
    executor = lock->executor;
    stack = lock->stack;
    stop = lock->stop;
  }

  ~ServerThread() noexcept(false) {
    executor->executeSync([this]() { stop->fulfill(); });
    // `thread` (declared last) joins first, then the scratch directory goes.
  }

  kj::StringPtr path() const { return socketPath; }

  bool idle() const {
    return executor->executeSync([this]() { return stack->idle(); });
  }

 private:
  struct Running {
    const kj::Executor* executor = nullptr;
    SidecarStack* stack = nullptr;
    kj::PromiseFulfiller<void>* stop = nullptr;
    kj::Maybe<kj::String> failure;
  };

  void serve() {
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([this]() {
      Log log(false);  // before the event loop, as in main()
      PreconditionTrap trap;  // after the Log: consulted first
      auto io = kj::setupAsyncIo();
      SidecarStack stack(io, log, scratch);
      auto stopped = kj::newPromiseAndFulfiller<void>();
      auto serving = stack.run().exclusiveJoin(kj::mv(stopped.promise));
      *running.lockExclusive() =
          Running{&kj::getCurrentThreadExecutor(), &stack, stopped.fulfiller.get(), nullptr};
      serving.wait(io.waitScope);
    })) {
      running.lockExclusive()->failure = kj::str(e->getDescription());
    }
  }

  ScratchDirectory scratch;
  kj::String socketPath;
  kj::MutexGuarded<Running> running;
  // Set once the stack runs; used from the fuzzing thread only through
  // `executor`, so everything they point to is touched on the server thread.
  const kj::Executor* executor;
  SidecarStack* stack;
  kj::PromiseFulfiller<void>* stop;
  kj::Thread thread;
};

// One client connection: sends `bytes`, half-closes, and reads (discarding)
// until the server hangs up. False when it went HANG_UP_BOUND without doing
// anything, which a server that hangs up on a client that did should never do.
bool converse(kj::StringPtr path, kj::ArrayPtr<const kj::byte> bytes) {
  int fd;
  KJ_SYSCALL(fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  kj::AutoCloseFd client(fd);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  KJ_REQUIRE(path.size() < sizeof(address.sun_path), path);
  memcpy(address.sun_path, path.begin(), path.size());
  KJ_SYSCALL(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), path);
  KJ_SYSCALL(fcntl(fd, F_SETFL, O_NONBLOCK));

  size_t sent = 0;
  bool writing = true;
  auto doneWriting = [&]() {
    writing = false;
    shutdown(fd, SHUT_WR);  // fails once the server reset the connection: it hung up then
  };
  if (bytes.size() == 0) doneWriting();
  kj::byte buffer[16384];
  for (;;) {
    pollfd events{fd, static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0};
    int ready = poll(&events, 1, static_cast<int>(HANG_UP_BOUND / kj::MILLISECONDS));
    if (ready < 0 && errno == EINTR) continue;
    KJ_SYSCALL(ready);
    if (ready == 0) return false;
    if ((events.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n == 0) return true;
      if (n < 0 && errno != EAGAIN && errno != EINTR) return true;  // reset: hung up too
    }
    if (writing && (events.revents & POLLOUT) != 0) {
      ssize_t n = send(fd, bytes.begin() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        doneWriting();  // the server stopped reading: that is how it refuses garbage
      } else if (n > 0 && (sent += n) == bytes.size()) {
        doneWriting();
      }
    }
  }
}

// Started before the first input, stopped at exit: the server under test is
// long-lived too, so state left behind by one input meets the next. But every
// finished flow run renders all kept task reports (up to 1000) that share its
// flow run id, and inputs mutated from one seed share ids: left alone, each
// input gets slower than the last. So the sidecar restarts, on a fresh state
// directory, every RESTART_EVERY inputs.
constexpr uint RESTART_EVERY = 256;
kj::Own<ServerThread> server;
uint inputsServed = 0;

void exchange(kj::ArrayPtr<const kj::byte> bytes) {
  if (++inputsServed % RESTART_EVERY == 0) {
    server = nullptr;  // stops and joins before the next one binds the socket
    server = kj::heap<ServerThread>();
  }
  bool hungUp = converse(server->path(), bytes);
  // The client is gone; the server must let go of everything it had for it,
  // soon (it runs on another thread: give it a few milliseconds).
  for (int tries = 0; !server->idle(); ++tries) {
    if (tries == LET_GO_TRIES) {
      fail(hungUp ? "a flow run, task or connection outlived its client"
                  : "the server kept the connection open after the client hung up");
    }
    usleep(1000);
  }
}

}  // namespace
}  // namespace tracer

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  signal(SIGPIPE, SIG_IGN);  // as main() does: the server writes to clients that hung up
  tracer::server = kj::heap<tracer::ServerThread>();
  atexit([]() { tracer::server = nullptr; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tracer::Input in(kj::arrayPtr(reinterpret_cast<const kj::byte*>(data), size));
  switch (in.u8() % 3) {
    case 0: tracer::exchange(in.rest); break;
    case 1: tracer::exchange(tracer::framedMessages(in)); break;
    default: tracer::exchange(tracer::RpcScript(in).build()); break;
  }
  return 0;
}
