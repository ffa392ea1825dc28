#include "rpc/access_policy.h"

#include <kj/debug.h>

#include <algorithm>

namespace tracer {

namespace {

bool contains(const std::vector<gid_t>& list, gid_t value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool inAnyGroup(const PeerIdentity& peer, const std::vector<gid_t>& gids) {
  if (contains(gids, peer.credentials.gid)) return true;
  return std::any_of(peer.groups.begin(), peer.groups.end(),
                     [&](gid_t g) { return contains(gids, g); });
}

}  // namespace

kj::Maybe<kj::String> AccessPolicy::refusal(const PeerIdentity& peer) const {
  if (peer.credentials.isRoot()) return nullptr;
  if (allowedUids.empty() && allowedGids.empty()) return nullptr;
  if (std::find(allowedUids.begin(), allowedUids.end(), peer.credentials.uid) !=
      allowedUids.end()) {
    return nullptr;
  }
  if (inAnyGroup(peer, allowedGids)) return nullptr;
  return kj::str("refused: ", peer.credentials.describe(),
                 " is not allowed to connect (not in --allow-uid or --allow-group)");
}

bool AccessPolicy::mayAdminister(const PeerIdentity& peer) const {
  // Root of another PID namespace (a container's, a flow-run pod's) is a
  // tenant like any other: every tenant's runs are not its to read.
  return (peer.credentials.isRoot() && peer.credentials.sameNamespaceAsSidecar) ||
         inAnyGroup(peer, adminGids);
}

kj::Maybe<kj::String> joinRefusal(kj::StringPtr flowRunId, const PeerCredentials& joiner,
                                  const PeerCredentials& opener) {
  if (joiner.isRoot() && joiner.sameNamespaceAsSidecar) return nullptr;
  bool sameNamespace = joiner.pidNamespace != 0 && joiner.pidNamespace == opener.pidNamespace;
  if (joiner.uid == opener.uid && sameNamespace) return nullptr;
  return kj::str("refused: flow run ", flowRunId, " was opened by uid ", opener.uid,
                 sameNamespace ? "" : " in another PID namespace", "; the caller (",
                 joiner.describe(), ") may only join flow runs of its own uid and PID namespace");
}

}  // namespace tracer
