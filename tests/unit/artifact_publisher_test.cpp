// The publisher with its outbox on a disk that fills up: a flow run's
// artifacts the outbox cannot store are held in memory, counted, and stored
// by the first attempt after there is room; past the cap the oldest go.

#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <string>

#include "report/artifact_publisher.h"
#include "full_disk.h"

using namespace tracer;

namespace {

constexpr int64_t RETENTION_NS = 30ll * 24 * 3600 * 1000000000;

struct Pieces {
  testing::FullDisk disk{4 << 20};
  Log log{false};
  Outbox outbox{disk.file("outbox.db")};
  ArtifactPublisher publisher{log, outbox, false, []() {}, RETENTION_NS};

  void finish(kj::StringPtr flowRunId) {
    capnp::MallocMessageBuilder message;
    auto footprint = message.initRoot<proto::TaskReport>();
    footprint.setFlowRunId(flowRunId);
    FlowRunSummary flow{kj::str(flowRunId), kj::str("etl"), kj::str(), kj::str(),
                        kj::str("COMPLETED"), 1000000000};
    publisher.flowRunFinished(flow, footprint.asReader(), nullptr);
  }

  // A live artifact whose body takes `bytes`.
  void live(kj::StringPtr flowRunId, size_t bytes) {
    Artifact artifact{kj::str(), kj::str("markdown"), kj::str("live-", flowRunId),
                      kj::str(std::string(bytes, 'x').c_str())};
    publisher.flowRunLive(artifact, flowRunId);
  }

  proto::SidecarStatus::Reader status(capnp::MallocMessageBuilder& message) {
    auto status = message.initRoot<proto::SidecarStatus>();
    publisher.fillStatus(status);
    return status.asReader();
  }
};

}  // namespace

TEST_CASE("artifacts the full outbox refuses are held in memory and stored once there is room") {
  Pieces pieces;
  pieces.finish("flow-run-0");
  size_t perRun = pieces.outbox.list(100).size();
  REQUIRE(perRun > 0);

  pieces.disk.fill();
  pieces.live("flow-run-1", 1 << 20);
  pieces.finish("flow-run-1");
  pieces.live("flow-run-1", 1 << 20);  // replaces the held one: only the newest matters
  size_t held = pieces.publisher.artifactsHeld();
  CHECK(held == perRun + 1);
  pieces.publisher.storeHeld();  // still full
  CHECK(pieces.publisher.artifactsHeld() == held);
  capnp::MallocMessageBuilder full;
  CHECK(pieces.status(full).getOutboxWriteFailures() >= 3);
  CHECK(pieces.status(full).getArtifactsHeld() == held);

  pieces.disk.makeRoom();
  pieces.publisher.storeHeld();
  CHECK(pieces.publisher.artifactsHeld() == 0);
  auto stored = pieces.outbox.list(100);
  CHECK(stored.size() == perRun * 2 + 1);
  for (auto& entry: stored) CHECK(entry.status == "local");
}

TEST_CASE("artifacts held past the in-memory cap drop the oldest, counted") {
  Pieces pieces;
  pieces.disk.fill();
  size_t body = 1 << 20;
  size_t fit = ArtifactPublisher::HELD_BYTES_MAX / body;
  for (size_t i = 0; i < fit + 2; ++i) pieces.live(kj::str("flow-run-", i), body);
  CHECK(pieces.publisher.artifactsHeld() == fit);
  capnp::MallocMessageBuilder message;
  CHECK(pieces.status(message).getArtifactsDropped() == 2);
}
