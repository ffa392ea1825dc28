#pragma once
// Shared history across nodes: the table artifact each flow run leaves in
// Prefect is also its machine-readable history. When a flow run starts for a
// deployment (or flow) this node knows nothing about, the seeder reads the
// last versions of that key's table artifact (POST /artifacts/filter) and
// fills the local history with their rows, so recommendations do not start
// from zero on a new worker. It runs in the background; a task that finishes
// before the answer arrives is advised from what was there.

#include <kj/async.h>

#include <string>

#include "ops/log.h"
#include "policy/lru_map.h"
#include "prefect/api_client.h"
#include "report/run_keys.h"
#include "store/history.h"

namespace tracer {

class HistorySeeder {
 public:
  // Keys it remembers having asked about (some 1 MiB): flow names are the
  // clients', so past this it forgets the one asked about least recently,
  // which is asked about again if a run of it comes back.
  static constexpr size_t ASKED_KEYS_MAX = 10000;

  HistorySeeder(Log& log, History& history, PrefectApi& api, uint32_t versions);

  // Reads the table artifact of `owner`'s key into its history, unless this
  // node has history of it or asked already.
  void seedIfUnknown(const RunOwner& owner);

 private:
  class ErrorHandler final: public kj::TaskSet::ErrorHandler {
   public:
    explicit ErrorHandler(Log& log): log(log) {}
    void taskFailed(kj::Exception&& e) override;
    Log& log;
  };

  // Where the rows go, and the names they are recorded with.
  struct Destination {
    std::string historyKey;
    std::string flow;
    std::string deploymentName;
  };
  size_t store(const Destination& destination, kj::StringPtr responseJson);

  Log& log;
  History& history;
  PrefectApi& api;
  uint32_t versions;
  // Once per key (while remembered): a miss is not retried every run. The
  // value is unused: a set kept in order of use.
  policy::LruMap<std::string, bool> asked{ASKED_KEYS_MAX};
  bool unreadableSaid = false;  // a row it cannot read is logged once
  ErrorHandler errorHandler;
  kj::TaskSet requests;
};

}  // namespace tracer
