#include "rpc/live_tasks_by_uid.h"

#include "ops/refuse.h"

namespace tracer {

kj::Own<LiveTasksByUid::Held> LiveTasksByUid::hold(const PeerCredentials& caller, uint32_t most) {
  auto& count = live.findOrCreate(caller.uid, [&]() {
    return kj::HashMap<uid_t, uint32_t>::Entry{caller.uid, 0};
  });
  if (!caller.isRoot() && count >= most) {
    ++refusals;
    refuse(kj::str("refused: uid ", caller.uid, " has ", count, " live tasks, its most "
                   "(--max-live-tasks-per-uid): the node's task maps are shared"));
  }
  ++count;
  return kj::heap<Held>(*this, caller.uid);
}

LiveTasksByUid::Held::~Held() {
  KJ_IF_MAYBE(count, counts.live.find(uid)) {
    if (--*count == 0) counts.live.erase(uid);
  }
}

}  // namespace tracer
