#pragma once
// How large one RPC message may be, and how much of it the variable part of
// an answer (artifact bodies, cost rows) may take. Cap'n Proto refuses to send
// a message past the sender's own read limit, so an answer that outgrows it
// fails the call: answers that grow with what is stored stop short of it.

#include <cstddef>
#include <cstdint>

namespace tracer {

// What the sidecar reads and sends at most (ReaderOptions.traversalLimitInWords): 512 KiB.
constexpr uint64_t RPC_MESSAGE_WORDS_MAX = 64 * 1024;

// An answer's variable part: well inside that, with room for the rest.
constexpr size_t ANSWER_PAYLOAD_BYTES_MAX = 384 * 1024;

}  // namespace tracer
