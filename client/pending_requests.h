#pragma once
// What a stopped or wedged sidecar can make a client hold: it answers
// nothing, and each request it has not answered is held (its promise, its
// message, the run it names) until it does or the connection ends. Requests
// unanswered at once are capped by kind; past a cap new ones of that kind are
// dropped, never held or waited for.

#include <kj/common.h>
#include <kj/memory.h>
#include <kj/string.h>

#include <atomic>
#include <cstdint>

namespace tracer::client {

// Task starts. Each start's finish is always sent, so what is held for tasks
// stays within twice this.
constexpr uint32_t MAX_PENDING_STARTS = 1024;
// Flow runs announced to the sidecar (opened, or opened with their finish).
// Each announced run's finish is always sent; a run past the cap is announced
// by its first task's start, or else not at all (its finish is dropped).
constexpr uint32_t MAX_PENDING_FLOW_RUNS = 256;
// Status and Admin calls: past this a call fails at once.
constexpr uint32_t MAX_PENDING_CALLS = 64;

class PendingRequests {
 public:
  enum class Kind { START, FLOW_RUN, CALL };

  // Stands for one request until the sidecar has answered it (or it failed).
  class Token {
   public:
    explicit Token(std::atomic<uint32_t>& count): count(count) {}
    ~Token() { count.fetch_sub(1, std::memory_order_relaxed); }
    KJ_DISALLOW_COPY(Token);

   private:
    std::atomic<uint32_t>& count;
  };

  // One more request of `kind`, for as long as the token lives; null at its cap.
  kj::Maybe<kj::Own<Token>> take(Kind kind) {
    auto& count = counts[static_cast<int>(kind)];
    if (count.fetch_add(1, std::memory_order_relaxed) >= capOf(kind)) {
      count.fetch_sub(1, std::memory_order_relaxed);
      return nullptr;
    }
    return kj::heap<Token>(count);
  }

  static constexpr uint32_t capOf(Kind kind) {
    return kind == Kind::START      ? MAX_PENDING_STARTS
           : kind == Kind::FLOW_RUN ? MAX_PENDING_FLOW_RUNS
                                    : MAX_PENDING_CALLS;
  }

  // Why a request of `kind` was not sent.
  static kj::String refusal(Kind kind) {
    kj::StringPtr what = kind == Kind::START      ? "starts"
                         : kind == Kind::FLOW_RUN ? "flow-run requests"
                                                  : "calls";
    return kj::str("dropped: the sidecar has not answered the last ", capOf(kind), " ", what);
  }

  // A task start or flow run the sidecar will never hear of.
  void countDropped() { droppedCount.fetch_add(1, std::memory_order_relaxed); }
  uint64_t dropped() const { return droppedCount.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint32_t> counts[3] = {};
  std::atomic<uint64_t> droppedCount{0};
};

}  // namespace tracer::client
