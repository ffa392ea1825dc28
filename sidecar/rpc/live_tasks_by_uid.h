#pragma once
// Live tasks per uid, across all of a user's connections: the kernel's maps
// are the node's (--max-live-tasks), so one user's tasks must not take them
// all. Each uid but root may hold at most AccessPolicy::maxLiveTasksPerUid
// live tasks at once; a start past that is refused (the client counts it
// dropped and the task runs unobserved, as with any refusal).

#include <kj/map.h>
#include <kj/memory.h>
#include <sys/types.h>

#include <cstdint>

#include "ops/peer_credentials.h"

namespace tracer {

class LiveTasksByUid {
 public:
  class Held;
  // One live task of `caller`'s uid while the returned object lives; refuses
  // (saying which limit) when that uid is at `most`.
  kj::Own<Held> hold(const PeerCredentials& caller, uint32_t most);
  uint64_t refused() const { return refusals; }

 private:
  kj::HashMap<uid_t, uint32_t> live;
  uint64_t refusals = 0;
};

class LiveTasksByUid::Held {
 public:
  Held(LiveTasksByUid& counts, uid_t uid): counts(counts), uid(uid) {}
  ~Held();
  KJ_DISALLOW_COPY(Held);

 private:
  LiveTasksByUid& counts;
  uid_t uid;
};

}  // namespace tracer
