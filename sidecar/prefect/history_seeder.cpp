#include "prefect/history_seeder.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <kj/debug.h>


#include "contract_json.h"
#include "ops/wall_clock.h"
#include "prefect/json_fields.h"
#include "tracer.capnp.h"

namespace tracer {

HistorySeeder::HistorySeeder(Log& log, History& history, PrefectApi& api, uint32_t versions)
    : log(log), history(history), api(api), versions(versions), errorHandler(log),
      requests(errorHandler) {}

void HistorySeeder::ErrorHandler::taskFailed(kj::Exception&& e) {
  log.warn(kj::str("shared history unavailable: ", e.getDescription()));
}

void HistorySeeder::seedIfUnknown(const RunOwner& owner) {
  Destination destination{historyKey(owner), owner.flow.cStr(), owner.deploymentName.cStr()};
  auto& key = destination.historyKey;
  if (asked.find(key) != nullptr) return;
  asked.put(key, true);
  if (history.knows(key)) return;
  auto tableKey = artifactKey(owner, ArtifactKind::TABLE);
  auto filter = kj::str("{\"artifacts\":{\"key\":{\"any_\":[", jsonQuoted(tableKey),
                        "]}},\"sort\":\"CREATED_DESC\",\"limit\":", versions, "}");
  requests.add(api.post("/artifacts/filter", kj::mv(filter))
                   .then([this, destination = kj::mv(destination), name = displayName(owner),
                          tableKey = kj::mv(tableKey)](ApiResponse response) {
                     KJ_REQUIRE(response.statusCode == 200, "artifact filter refused",
                                response.statusCode, response.body);
                     size_t runs = store(destination, response.body);
                     log.info(kj::str("seeded the history of ", name, " (",
                                      destination.historyKey.c_str(), ") with ", runs,
                                      " runs from Prefect (", tableKey, ")"));
                   }));
}

namespace {

// A row whose CPU or memory peak is null was measured only in part: like the
// sidecar that wrote it, the history leaves it out (Advisor::advise). Null,
// not the row's `unknown`: a null reads as 0 into a TaskRow.
bool measured(capnp::JsonValue::Reader row) {
  for (auto name: {"cpu_s", "peak_rss_bytes"}) {
    KJ_IF_MAYBE(value, member(row, name)) {
      if (!value->isNumber()) return false;
    }
  }
  return true;
}

}  // namespace

size_t HistorySeeder::store(const Destination& destination, kj::StringPtr responseJson) {
  capnp::MallocMessageBuilder message;
  auto artifacts = message.initRoot<capnp::JsonValue>();
  capnp::JsonCodec codec;
  decodeJson(responseJson, artifacts);
  KJ_REQUIRE(artifacts.isArray(), "artifact filter did not answer a list");
  int64_t nowNs = realtimeNs();
  size_t stored = 0;
  auto list = artifacts.getArray();
  // Newest first: older versions get earlier times, all before anything local.
  for (size_t i = list.size(); i-- > 0;) {
    KJ_IF_MAYBE(data, member(list[i], "data")) {
      if (!data->isString()) continue;
      capnp::MallocMessageBuilder rowsMessage;
      auto rows = rowsMessage.initRoot<capnp::JsonValue>();
      decodeJson(data->getString(), rows);
      if (!rows.isArray()) continue;
      for (auto json: rows.getArray()) {
        if (!measured(json)) continue;
        capnp::MallocMessageBuilder rowMessage;
        auto row = rowMessage.initRoot<proto::TaskRow>();
        KJ_IF_MAYBE(e, kj::runCatchingExceptions(
                           [&]() { fromContractJson(codec.encodeRaw(json), capnp::toDynamic(row)); })) {
          // A row this sidecar cannot read whole (a newer writer's) is left out, said once.
          if (!unreadableSaid) {
            log.warn(kj::str("a shared history row is left out: ", e->getDescription()));
            unreadableSaid = true;
          }
          continue;
        }
        RunContext context;
        context.flow = destination.flow;
        context.deployment = destination.deploymentName;
        context.finishedAtNs = nowNs - int64_t(i + 1) * 1000000000;
        auto taskKey = row.getTaskKey();
        history.recordTask(TaskHistoryKey{destination.historyKey,
                                          (taskKey.size() > 0 ? taskKey : row.getTask()).cStr()},
                           context, observationOf(context, row.asReader()),
                           toContractJson(row.asReader()));
        ++stored;
      }
    }
  }
  return stored;
}

}  // namespace tracer
