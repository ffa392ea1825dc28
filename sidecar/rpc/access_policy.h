#pragma once
// Who may talk to the sidecar, decided from the kernel's view of the peer
// (never from anything the client says). The socket's mode and group are the
// first gate; this is the second, for hosts where the socket must be reachable
// by more users than should use it (a shared hostPath, a broad group).

#include <kj/string.h>
#include <sys/types.h>

#include <vector>

#include "ops/peer_credentials.h"

namespace tracer {

struct AccessPolicy {
  // Empty lists: anyone who can open the socket may connect. Root always may.
  std::vector<uid_t> allowedUids;
  std::vector<gid_t> allowedGids;  // primary or supplementary group
  // Admin (status of every run, reports, reloads, the outbox) is for root in
  // the sidecar's PID namespace and, when set, members of this group.
  std::vector<gid_t> adminGids;
  // Per connection. A Prefect flow-run process holds one flow-run scope and one
  // live task per task running at once; a client past this is broken or hostile.
  uint32_t maxLiveScopes = 4096;
  // Per connection (and four times as many messages of any kind); over it,
  // the sidecar stops reading from that client until the rate falls
  // (backpressure, not errors). One task costs two calls.
  uint32_t maxCallsPerSecond = 20000;
  // Connections at once: each holds descriptors (its socket, the peer's
  // pidfd), so these keep any user from taking the sidecar's last ones. Root
  // may use the last ROOT_CONNECTIONS of maxConnections, which nobody else may;
  // every other uid at most maxConnectionsPerUid.
  static constexpr uint32_t ROOT_CONNECTIONS = 64;
  uint32_t maxConnections = 4096;
  uint32_t maxConnectionsPerUid = 1024;
  // Live tasks of one uid at once, root's aside (rpc/live_tasks_by_uid.h).
  uint32_t maxLiveTasksPerUid = 4096;

  // Why this peer may not connect, or nullptr if it may.
  kj::Maybe<kj::String> refusal(const PeerIdentity& peer) const;
  bool mayAdminister(const PeerIdentity& peer) const;
};

// Why `joiner` may not add tasks to flow run `flowRunId`, which `opener` opened
// (FlowRunInfo.joinRunningFlowRun), or nullptr if it may: a process of the
// opener's uid in the opener's PID namespace (its pool children and
// subprocesses are), or root in ours. Containers of one uid stay apart: each
// has a PID namespace of its own. Either way the joiner registers only
// threads it could register in a run of its own (resolveTaskThread).
kj::Maybe<kj::String> joinRefusal(kj::StringPtr flowRunId, const PeerCredentials& joiner,
                                  const PeerCredentials& opener);

}  // namespace tracer
