#include "rpc/caller.h"

#include <poll.h>

#include "ops/refuse.h"

namespace tracer {

Caller::Caller(PeerIdentity identity, bool mayAdminister, uint32_t maxLiveScopes)
    : identity(kj::mv(identity)), admin(mayAdminister), maxLiveScopes(maxLiveScopes) {}

void Caller::requireStillRunning() const {
  if (identity.pidfd.get() < 0) return;
  // A process pidfd turns readable when the process exits.
  pollfd exited{identity.pidfd.get(), POLLIN, 0};
  if (poll(&exited, 1, 0) == 1) {
    refuse(kj::str("refused: the calling process (", identity.credentials.describe(),
                   ") has exited"));
  }
}

kj::Own<Caller::Scope> Caller::holdScope(kj::StringPtr what) {
  if (liveScopes >= maxLiveScopes) {
    refuse(kj::str("refused: ", what, ": this connection (", identity.credentials.describe(),
                   ") already holds ", liveScopes, " live scopes, the limit set by ",
                   "--max-scopes-per-connection"));
  }
  return kj::heap<Scope>(kj::addRef(*this));
}

}  // namespace tracer
