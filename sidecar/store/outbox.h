#pragma once
// Artifacts on their way to Prefect. Every artifact is written here before
// anything is sent, so nothing is lost to a crash or an outage: a restart
// resumes where delivery stopped. Without a Prefect API the artifacts stay
// here as `local` and tracerctl shows them.
// An attempt is marked in flight (committed) before it is sent; an attempt
// that got no answer (a crash, a timeout) stays marked, so the next one first
// asks Prefect whether the artifact arrived: no duplicate versions.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite.h"
#include "metrics/metrics_source.h"

namespace tracer {

struct OutboxEntry {
  int64_t id = 0;
  std::string key, type, flowRunId, status, lastError, body;
  std::string artifactId;  // metadata_.tracer_artifact_id in the body
  bool inFlight = false;   // an earlier attempt was sent and never answered
  // A flow run's live artifact (putLive()): one row, its body replaced as
  // the run goes on (`revision` counts that), sent once and then updated in
  // place in Prefect, where it is `prefectId`.
  bool live = false;
  int64_t revision = 0;
  std::string prefectId;
  uint32_t attempts = 0;
  int64_t createdAtNs = 0;
  int64_t nextAttemptNs = 0;
};

class Outbox final: public MetricsSource {
 public:
  explicit Outbox(const std::string& path);

  // status: "pending" (to be delivered) or "local" (no Prefect API configured).
  int64_t add(const std::string& key, const std::string& type, const std::string& flowRunId,
              const std::string& artifactId, const std::string& body, const std::string& status,
              int64_t nowNs);

  // The live artifact of `flowRunId` (no key): made, or its body replaced and
  // due again now, keeping its artifact id and where Prefect has it.
  void putLive(const std::string& flowRunId, const std::string& artifactId,
               const std::string& body, const std::string& status, int64_t nowNs);

  std::vector<OutboxEntry> due(int64_t nowNs, size_t limit);
  std::optional<int64_t> nextAttemptNs();
  void markInFlight(int64_t id);
  // `entry` as it was read reached Prefect, which has it as `prefectId` (if
  // said); a live artifact whose body was replaced since stays due.
  void delivered(const OutboxEntry& entry, const std::string& prefectId = "");
  // answered: Prefect said no (429, 5xx), so the artifact is known not to be
  // stored; otherwise (no answer) it stays in flight.
  void retryLater(int64_t id, int64_t atNs, const std::string& error, bool answered);
  void park(int64_t id, const std::string& error);
  size_t retryParked(int64_t nowNs);
  // Removes delivered and local artifacts made before `beforeNs` (pending
  // and parked ones stay: they are still owed to Prefect). Returns how many.
  size_t prune(int64_t beforeNs);
  std::map<std::string, uint64_t> countsByStatus();
  // Artifacts by status.
  void renderMetrics(PrometheusText& out) override;

  // Newest first.
  std::vector<OutboxEntry> list(size_t limit);

 private:
  void addColumnIfMissing(const char* name, const char* definition);
  std::vector<OutboxEntry> select(const char* sql, int64_t bind1, int64_t bind2);

  Database db;
};

}  // namespace tracer
