// HistorySeeder: asks Prefect once per key it remembers, and remembers a
// bounded number of keys however many flows clients name.
#include <catch2/catch.hpp>
#include <kj/async-io.h>

#include <string>

#include "prefect/history_seeder.h"
#include "store/history.h"
#include "temp_directory.h"

using namespace tracer;

namespace {

// Counts the filters posted and never answers them.
class SilentPrefectApi final: public PrefectApi {
 public:
  kj::Promise<ApiResponse> post(kj::StringPtr, kj::String) override {
    ++posts;
    return kj::Promise<ApiResponse>(kj::NEVER_DONE);
  }
  kj::Promise<ApiResponse> patch(kj::StringPtr, kj::String) override { return kj::NEVER_DONE; }
  size_t posts = 0;
};

}  // namespace

TEST_CASE("the seeder forgets the keys asked about least recently past its bound") {
  auto io = kj::setupAsyncIo();
  testing::TempDirectory state;
  Log log{false};
  History history(state.file("history.db"), 10);
  SilentPrefectApi api;
  HistorySeeder seeder(log, history, api, 5);
  auto seed = [&](const std::string& flow) { seeder.seedIfUnknown(RunOwner{flow.c_str(), "", ""}); };

  seed("first");
  seed("first");
  CHECK(api.posts == 1);  // once per key
  for (size_t i = 0; i < HistorySeeder::ASKED_KEYS_MAX; ++i) seed("flow-" + std::to_string(i));
  CHECK(api.posts == 1 + HistorySeeder::ASKED_KEYS_MAX);
  seed("flow-" + std::to_string(HistorySeeder::ASKED_KEYS_MAX - 1));  // still remembered
  CHECK(api.posts == 1 + HistorySeeder::ASKED_KEYS_MAX);
  seed("first");  // forgotten: asked again
  CHECK(api.posts == 2 + HistorySeeder::ASKED_KEYS_MAX);
}
