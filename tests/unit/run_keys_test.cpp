// The keys a flow run's history and artifacts are kept under (report/run_keys.h).
#include <catch2/catch.hpp>

#include <regex>
#include <string>

#include "report/run_keys.h"

namespace {

using tracer::ArtifactKind;
using tracer::RunOwner;

constexpr const char* ETL_PROD = "3f2a9c1e-5b7d-4e21-9a0b-1c2d3e4f5a6b";
constexpr const char* REPORT_PROD = "b04417d2-0c3e-4f6a-8d9e-7a6b5c4d3e2f";

std::string key(const RunOwner& owner, ArtifactKind kind) {
  return tracer::artifactKey(owner, kind).cStr();
}

bool prefectAccepts(const std::string& key) {
  return std::regex_match(key, std::regex("[a-z0-9-]*"));  // ArtifactCreate.key
}

}  // namespace

TEST_CASE("two flows' deployments of the same name never share a key") {
  RunOwner etl{"etl", ETL_PROD, "prod"};
  RunOwner report{"report", REPORT_PROD, "prod"};
  CHECK(tracer::historyKey(etl) == std::string("deployment:") + ETL_PROD);
  CHECK(tracer::historyKey(etl) != tracer::historyKey(report));
  CHECK(key(etl, ArtifactKind::REPORT) == "tracer-etl-prod-3f2a9c1e");
  CHECK(key(etl, ArtifactKind::TABLE) == "tracer-etl-prod-3f2a9c1e-tasks");
  CHECK(key(report, ArtifactKind::REPORT) == "tracer-report-prod-b04417d2");
  CHECK(key(report, ArtifactKind::TABLE) == "tracer-report-prod-b04417d2-tasks");

  // Even a second flow slugged like the first keeps its own keys, by the id.
  RunOwner etlAgain{"ETL", REPORT_PROD, "prod"};
  CHECK(key(etlAgain, ArtifactKind::REPORT) != key(etl, ArtifactKind::REPORT));
}

TEST_CASE("a run without a deployment id is known by its flow") {
  RunOwner local{"Nightly ETL!", "", ""};
  CHECK(tracer::historyKey(local) == "flow:Nightly ETL!");
  CHECK(key(local, ArtifactKind::REPORT) == "tracer-nightly-etl");
  CHECK(key(local, ArtifactKind::TABLE) == "tracer-nightly-etl-tasks");
  // A name without an id cannot say which flow's "prod" it is.
  RunOwner named{"Nightly ETL!", "", "prod"};
  CHECK(tracer::historyKey(named) == "flow:Nightly ETL!");
  CHECK(key(named, ArtifactKind::REPORT) == "tracer-nightly-etl");
}

TEST_CASE("artifact keys are Prefect's charset and bounded; the id part is never cut") {
  std::string longFlow(300, 'F');
  std::string longDeployment = "Prod / EU -- " + std::string(300, 'd') + " !";
  RunOwner owner{longFlow.c_str(), "ABCDEF01-5b7d-4e21-9a0b-1c2d3e4f5a6b", longDeployment.c_str()};
  for (auto kind: {ArtifactKind::REPORT, ArtifactKind::TABLE}) {
    auto k = key(owner, kind);
    CHECK(prefectAccepts(k));
    CHECK(k.size() <= 87);
    CHECK(k.find("--") == std::string::npos);
  }
  CHECK(key(owner, ArtifactKind::REPORT) ==
        "tracer-" + std::string(40, 'f') + "-prod-eu-" + std::string(16, 'd') + "-abcdef01");

  // Names of nothing but punctuation leave no empty parts behind.
  RunOwner bare{"!!!", "ABCDEF01-5b7d-4e21-9a0b-1c2d3e4f5a6b", "***"};
  CHECK(key(bare, ArtifactKind::TABLE) == "tracer-abcdef01-tasks");
  // The id's case does not make another deployment.
  RunOwner lower{"!!!", "abcdef01-5b7d-4e21-9a0b-1c2d3e4f5a6b", "***"};
  CHECK(tracer::historyKey(bare) == tracer::historyKey(lower));
}

TEST_CASE("a deployment id that is not a UUID is refused") {
  CHECK_THROWS_WITH(tracer::artifactKey(RunOwner{"etl", "prod", "prod"}, ArtifactKind::REPORT),
                    Catch::Contains("not a UUID"));
}

TEST_CASE("people read flow/deployment") {
  CHECK(tracer::displayName(RunOwner{"etl", ETL_PROD, "prod"}).asPtr() == "etl/prod");
  CHECK(tracer::displayName(RunOwner{"etl", "", ""}).asPtr() == "etl");
}
