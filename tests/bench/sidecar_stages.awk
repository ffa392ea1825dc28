# The share of the sidecar's perf samples under each stage of its work (a
# stage's own and its callees'), as the data flows: waiting, intake
# (registration, finish), the finishing of runs off the RPC path and its
# pieces, the once-a-second sampling; the rest is reading and answering the
# RPC messages (Cap'n Proto's RPC system, KJ's event loop) and start-up.
# Input: `perf report --children --sort symbol -g none --stdio`.
#   perf report ... | awk -f tests/bench/sidecar_stages.awk
BEGIN {
  n = split("] epoll_wait|waiting for messages (epoll_wait)," \
            "FlowRunScopeServer::startTask|registration (startTask)," \
            "BpfCollector::track|  its BPF map updates (track)," \
            "resolveTaskThread|  its thread check," \
            "FlowRunScopeServer::finishTask|finish (finishTask)," \
            "Conductor::finishPending|finishing runs (finishPending)," \
            "Advisor::advise|  advice," \
            "History::write|  history writes (SQLite)," \
            "renderFlowArtifacts|  flow run artifacts," \
            "Outbox::add|  outbox," \
            "AttributionTable::sample|sampling live runs (once a second)", stages, ",")
}
/^ +[0-9.]+%/ {
  for (i = 1; i <= n; i++) {
    split(stages[i], part, "|")
    if (!(i in seen) && index($0, part[1])) {
      share = $1
      sub("%", "", share)
      seen[i] = share
    }
  }
}
END {
  for (i = 1; i <= n; i++) {
    split(stages[i], part, "|")
    share = (i in seen) ? seen[i] : 0
    if (substr(part[2], 1, 1) != " ") top += share
    printf "  %-36s %5.1f %% of the sidecar's samples\n", part[2], share
  }
  printf "  %-36s %5.1f %% of the sidecar's samples\n", "the rest (RPC system, event loop)", 100 - top
}
