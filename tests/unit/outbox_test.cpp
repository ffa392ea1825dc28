// The artifact outbox on real SQLite, its clock passed in: what is due when,
// what an unanswered attempt leaves behind, and what a restart finds.

#include <catch2/catch.hpp>

#include <string>

#include "store/outbox.h"
#include "temp_directory.h"

using namespace tracer;

namespace {

// A database file of its own, removed afterwards.
struct TempDatabase {
  testing::TempDirectory directory;
  std::string path = directory.file("outbox.db");
};

int64_t addPending(Outbox& outbox, const std::string& key, int64_t now) {
  return outbox.add(key, "table", "run-1", "artifact-" + key, "{}", "pending", now);
}

}  // namespace

TEST_CASE("an artifact is due when added, and again only when its retry time comes") {
  TempDatabase file;
  Outbox outbox(file.path);
  auto id = addPending(outbox, "a", 100);
  REQUIRE(outbox.due(100, 10).size() == 1);
  outbox.markInFlight(id);
  outbox.retryLater(id, 500, "503 Service Unavailable", true);
  CHECK(outbox.due(499, 10).empty());
  auto due = outbox.due(500, 10);
  REQUIRE(due.size() == 1);
  CHECK(due[0].attempts == 1);
  CHECK(due[0].lastError == "503 Service Unavailable");
  CHECK_FALSE(due[0].inFlight);  // Prefect answered: it is known not to be stored
  CHECK(outbox.nextAttemptNs() == 500);
}

TEST_CASE("an attempt that got no answer stays in flight, so the next one asks first") {
  TempDatabase file;
  Outbox outbox(file.path);
  auto id = addPending(outbox, "a", 100);
  outbox.markInFlight(id);
  outbox.retryLater(id, 200, "timed out", false);
  auto due = outbox.due(200, 10);
  REQUIRE(due.size() == 1);
  CHECK(due[0].inFlight);
}

TEST_CASE("delivered and parked artifacts are not due; parked ones come back when asked") {
  TempDatabase file;
  Outbox outbox(file.path);
  addPending(outbox, "a", 100);
  auto parked = addPending(outbox, "b", 100);
  outbox.add("c", "markdown", "run-1", "artifact-c", "{}", "local", 100);
  outbox.delivered(outbox.due(100, 1).at(0));
  outbox.park(parked, "422 Unprocessable Entity");
  CHECK(outbox.due(1000, 10).empty());  // a local one is never sent
  auto counts = outbox.countsByStatus();
  CHECK(counts["delivered"] == 1);
  CHECK(counts["parked"] == 1);
  CHECK(counts["local"] == 1);
  CHECK(outbox.retryParked(2000) == 1);
  auto due = outbox.due(2000, 10);
  REQUIRE(due.size() == 1);
  CHECK(due[0].key == "b");
}

TEST_CASE("a restart finds what was not delivered, in flight as it was") {
  TempDatabase file;
  int64_t id;
  {
    Outbox outbox(file.path);
    id = addPending(outbox, "a", 100);
    addPending(outbox, "b", 100);
    outbox.markInFlight(id);  // then the sidecar died
  }
  Outbox reopened(file.path);
  auto due = reopened.due(100, 10);
  REQUIRE(due.size() == 2);
  CHECK(due[0].id == id);
  CHECK(due[0].inFlight);
  CHECK(due[0].artifactId == "artifact-a");
  CHECK_FALSE(due[1].inFlight);
  CHECK(reopened.list(10).front().key == "b");  // newest first
}

TEST_CASE("a live artifact is one row: a newer body replaces it and is due again, even if the "
          "older one was being sent") {
  TempDatabase file;
  Outbox outbox(file.path);
  outbox.putLive("run-1", "live-1", "{\"v\":1}", "pending", 100);
  auto first = outbox.due(100, 10);
  REQUIRE(first.size() == 1);
  CHECK(first[0].live);
  CHECK(first[0].key == "");
  CHECK(first[0].prefectId == "");
  outbox.markInFlight(first[0].id);
  // Replaced while that attempt is out: its answer must not mark the newer one sent.
  outbox.putLive("run-1", "live-1", "{\"v\":2}", "pending", 200);
  outbox.delivered(first[0], "prefect-uuid");
  auto second = outbox.due(200, 10);
  REQUIRE(second.size() == 1);
  CHECK(second[0].id == first[0].id);
  CHECK(second[0].body == "{\"v\":2}");
  CHECK(second[0].prefectId == "prefect-uuid");  // updated in place from now on
  CHECK(second[0].artifactId == "live-1");
  outbox.delivered(second[0]);
  CHECK(outbox.due(1000, 10).empty());
  CHECK(outbox.countsByStatus()["delivered"] == 1);
  // Another flow run's is its own row.
  outbox.putLive("run-2", "live-2", "{}", "pending", 300);
  CHECK(outbox.due(300, 10).size() == 1);
}
