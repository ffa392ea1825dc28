// Artifact delivery against a fake Prefect API that answers what each test
// needs (the real server cannot be made to answer 503 or lose an answer on
// demand), with the outbox on real SQLite and a real event loop: retries,
// parking, and the check before an unanswered attempt is sent again.

#include <catch2/catch.hpp>
#include <kj/async-io.h>

#include <deque>
#include <string>
#include <vector>

#include "ops/wall_clock.h"
#include "prefect/artifact_delivery.h"
#include "store/outbox.h"
#include "temp_directory.h"

using namespace tracer;

namespace {

// Answers each POST with the next of its programmed answers; a missing
// status stands for no answer at all (the connection failed).
class FakePrefectApi final: public PrefectApi {
 public:
  struct Answer {
    unsigned status;  // 0: no answer
    std::string body;
  };

  kj::Promise<ApiResponse> post(kj::StringPtr path, kj::String json) override {
    return answer(kj::str(path), kj::mv(json));
  }
  kj::Promise<ApiResponse> patch(kj::StringPtr path, kj::String json) override {
    return answer(kj::str("PATCH ", path), kj::mv(json));
  }

  std::deque<Answer> answers;
  std::vector<std::string> calls;
  std::vector<std::string> bodies;

 private:
  kj::Promise<ApiResponse> answer(kj::String path, kj::String json) {
    calls.push_back(std::string(path.cStr()));
    bodies.push_back(std::string(json.cStr()));
    KJ_REQUIRE(!answers.empty(), "no answer programmed for", path);
    auto answer = answers.front();
    answers.pop_front();
    if (answer.status == 0) return KJ_EXCEPTION(DISCONNECTED, "connection reset by the fake");
    return ApiResponse{answer.status, kj::str(answer.body), nullptr};
  }
};

struct Pieces {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  testing::TempDirectory state;
  Log log{false};
  Outbox outbox{state.file("outbox.db")};
  FakePrefectApi api;
  ArtifactDelivery delivery{log, outbox, io.provider->getTimer(), api};

  int64_t add(const std::string& key) {
    return outbox.add(key, "markdown", "flow-1", "artifact-" + key, "{}", "pending", realtimeNs());
  }

  std::string statusOf(int64_t id) {
    for (auto& entry: outbox.list(100)) {
      if (entry.id == id) return entry.status;
    }
    return "(gone)";
  }

  // Runs delivery until `done` holds, or fails after `seconds`.
  template <typename Done>
  void runUntil(Done&& done, int seconds = 5) {
    auto running = delivery.run().eagerlyEvaluate(nullptr);
    auto& timer = io.provider->getTimer();
    for (int i = 0; i < seconds * 100 && !done(); ++i) {
      timer.afterDelay(10 * kj::MILLISECONDS).wait(io.waitScope);
    }
    REQUIRE(done());
  }
};

}  // namespace

TEST_CASE("an artifact Prefect answers 503 is sent again, and then delivered") {
  Pieces pieces;
  auto id = pieces.add("run-summary");
  pieces.api.answers = {{503, "busy"}, {201, "{}"}};
  pieces.runUntil([&]() { return pieces.delivery.counts().delivered == 1; });
  CHECK(pieces.delivery.counts().retried == 1);
  CHECK(pieces.api.calls == std::vector<std::string>{"/artifacts/", "/artifacts/"});
  CHECK(pieces.statusOf(id) == "delivered");
}

TEST_CASE("an artifact Prefect refuses with a 4xx is parked with Prefect's answer, not retried") {
  Pieces pieces;
  auto id = pieces.add("run-summary");
  pieces.api.answers = {{422, "key must match ^[a-z0-9-]*$"}};
  pieces.runUntil([&]() { return pieces.delivery.counts().parked == 1; });
  CHECK(pieces.delivery.counts().retried == 0);
  CHECK(pieces.statusOf(id) == "parked");
  auto entries = pieces.outbox.list(10);
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].lastError.find("HTTP 422: key must match") != std::string::npos);
}

TEST_CASE("an attempt that got no answer is looked for in Prefect before it is sent again") {
  Pieces pieces;
  auto id = pieces.add("run-summary");
  // Lost on the way back: Prefect stored it. The filter finds it by our id.
  pieces.api.answers = {
      {0, ""},
      {200, R"([{"key":"run-summary","metadata_":{"tracer_artifact_id":"artifact-run-summary"}}])"}};
  pieces.runUntil([&]() { return pieces.delivery.counts().foundDelivered == 1; });
  CHECK(pieces.api.calls == std::vector<std::string>{"/artifacts/", "/artifacts/filter"});
  CHECK(pieces.delivery.counts().delivered == 0);  // not sent a second time
  CHECK(pieces.statusOf(id) == "delivered");
}

TEST_CASE("an unanswered attempt Prefect did not store is sent again") {
  Pieces pieces;
  auto id = pieces.add("run-summary");
  pieces.api.answers = {{0, ""}, {200, "[]"}, {201, "{}"}};
  pieces.runUntil([&]() { return pieces.delivery.counts().delivered == 1; });
  CHECK(pieces.api.calls ==
        std::vector<std::string>{"/artifacts/", "/artifacts/filter", "/artifacts/"});
  CHECK(pieces.statusOf(id) == "delivered");
}

TEST_CASE("a live artifact is made once, then updated in place with its newer body") {
  Pieces pieces;
  auto body = [](int version) {
    return "{\"key\":null,\"type\":\"markdown\",\"description\":\"now\",\"data\":\"v" +
           std::to_string(version) + "\",\"metadata_\":{\"tracer_artifact_id\":\"live-1\"}}";
  };
  pieces.outbox.putLive("flow-1", "live-1", body(1), "pending", realtimeNs());
  pieces.api.answers = {{201, R"({"id":"11111111-2222-3333-4444-555555555555"})"}, {204, ""}};
  pieces.runUntil([&]() { return pieces.delivery.counts().delivered == 1; });
  pieces.outbox.putLive("flow-1", "live-1", body(2), "pending", realtimeNs());
  pieces.delivery.wake();
  pieces.runUntil([&]() { return pieces.delivery.counts().delivered == 2; });
  CHECK(pieces.api.calls ==
        std::vector<std::string>{"/artifacts/",
                                 "PATCH /artifacts/11111111-2222-3333-4444-555555555555"});
  CHECK(pieces.api.bodies[1] == R"({"data":"v2","description":"now"})");
  CHECK(pieces.outbox.due(realtimeNs(), 10).empty());
}

TEST_CASE("a live artifact whose making got no answer is found by its id and updated, not made "
          "twice") {
  Pieces pieces;
  pieces.outbox.putLive("flow-1", "live-1",
                        R"({"key":null,"data":"v1","description":"now","metadata_":{}})",
                        "pending", realtimeNs());
  pieces.api.answers = {
      {0, ""},
      {200, R"([{"id":"found-id","key":null,"metadata_":{"tracer_artifact_id":"live-1"}}])"},
      {204, ""}};
  pieces.runUntil([&]() { return pieces.delivery.counts().delivered == 1; });
  CHECK(pieces.api.calls == std::vector<std::string>{"/artifacts/", "/artifacts/filter",
                                                     "PATCH /artifacts/found-id"});
  // Looked for among the flow run's artifacts, whatever their key.
  CHECK(pieces.api.bodies[1].find("\"key\"") == std::string::npos);
}

TEST_CASE("delivery that an error stopped starts again after a backoff, counted, and delivers") {
  Pieces pieces;
  auto id = pieces.add("run-summary");
  // Nothing programmed: the fake throws as the artifact is sent, as an outbox
  // that cannot be written does.
  auto running = pieces.delivery.run().eagerlyEvaluate(nullptr);
  auto& timer = pieces.io.provider->getTimer();
  for (int i = 0; i < 100 && pieces.delivery.counts().restarts == 0; ++i) {
    timer.afterDelay(10 * kj::MILLISECONDS).wait(pieces.io.waitScope);
  }
  REQUIRE(pieces.delivery.counts().restarts == 1);
  // Sent and unanswered: looked for first, not there, sent again.
  pieces.api.answers = {{200, "[]"}, {201, "{}"}};
  for (int i = 0; i < 300 && pieces.delivery.counts().delivered == 0; ++i) {
    timer.afterDelay(10 * kj::MILLISECONDS).wait(pieces.io.waitScope);
  }
  CHECK(pieces.delivery.counts().delivered == 1);
  CHECK(pieces.statusOf(id) == "delivered");
  CHECK(pieces.delivery.counts().restarts == 1);
}
