#pragma once
// The cost of the runs in the history over a window of time, against the
// window before it: by deployment or flow (their flow runs' footprints, what a
// flow run's allocation cost), or by task. It never adds what it does not
// know: currencies are kept apart, runs without a cost are counted and left
// out, and a row whose runs the history no longer has all of says so
// (docs/policies.md, "Costs over time").

#include <kj/refcount.h>

#include <string>

#include "message_limits.h"
#include "report/cost_admin.h"

namespace tracer {

// The most rows an answer lists, those that used most; the rest are counted.
// The rows are also at most COST_ROWS_WORDS_MAX words (capnp/message_limits.h):
// long names and reasons make fewer.
constexpr size_t COST_ROWS_MAX = 1000;
constexpr uint64_t COST_ROWS_WORDS_MAX = ANSWER_PAYLOAD_BYTES_MAX / sizeof(capnp::word);

// Each rollup runs on a thread of its own with a connection of its own to
// the history (store/history_reader.h): over hundreds of thousands of runs it
// takes seconds, which the event loop spends on task starts meanwhile. One at
// a time: another call while one runs is refused.
class CostRollup final: public CostAdmin {
 public:
  // The history at `historyPath`, which keeps `keepRuns` runs of a task.
  CostRollup(std::string historyPath, uint32_t keepRuns)
      : historyPath(kj::mv(historyPath)), keepRuns(keepRuns) {}

  kj::Promise<kj::Own<capnp::MessageBuilder>> costs(kj::StringPtr by, uint64_t sinceNs,
                                                    int64_t nowNs) override;

 private:
  std::string historyPath;
  uint32_t keepRuns;
  // Whether a rollup is under way; shared with the call's promise, which the
  // RPC system may drop after this is gone (a call in flight as the sidecar
  // shuts down outlives its connection until the event loop goes).
  struct Running final: public kj::Refcounted {
    bool now = false;
  };
  kj::Own<Running> running = kj::refcounted<Running>();
};

}  // namespace tracer
