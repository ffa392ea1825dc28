#pragma once
// One connected client as every capability served on its connection sees it:
// who it is (from the kernel, at connect time), a pidfd pinning that very
// process (pids get reused, pidfds do not), whether it may use Admin, and the
// scopes it holds against its per-connection limit. Refcounted because the
// connection and each scope it opened hold it, and scopes can be the last to go.

#include <kj/refcount.h>

#include "ops/peer_credentials.h"
#include "rpc/namespace_tids.h"

namespace tracer {

class Caller final: public kj::Refcounted {
 public:
  Caller(PeerIdentity identity, bool mayAdminister, uint32_t maxLiveScopes);

  const PeerCredentials& credentials() const { return identity.credentials; }
  bool mayAdminister() const { return admin; }

  // Refuses when the calling process has exited since it connected: its pid,
  // and the tids under it, may by now belong to someone else.
  void requireStillRunning() const;
  int pidfd() const { return identity.pidfd.get(); }
  // Its threads by their tids in its PID namespace, as resolved so far (a
  // cache: mutable, it changes no answer).
  NamespaceTids& namespaceTids() const { return tids; }

  // One flow-run or task scope counted against the limit while the returned
  // object lives; refuses (saying which limit) when the caller is at it.
  class Scope;
  kj::Own<Scope> holdScope(kj::StringPtr what);

 private:
  PeerIdentity identity;
  bool admin;
  uint32_t maxLiveScopes;
  uint32_t liveScopes = 0;
  mutable NamespaceTids tids;
};

class Caller::Scope {
 public:
  explicit Scope(kj::Own<Caller> caller): caller(kj::mv(caller)) { ++this->caller->liveScopes; }
  ~Scope() { --caller->liveScopes; }
  KJ_DISALLOW_COPY(Scope);

 private:
  kj::Own<Caller> caller;
};

}  // namespace tracer
