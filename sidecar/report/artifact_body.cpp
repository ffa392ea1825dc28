#include "report/artifact_body.h"

#include <kj/debug.h>
#include <kj/encoding.h>
#include <sys/random.h>

#include <algorithm>

#include "contract_json.h"
#include "report/run_keys.h"

namespace tracer {

namespace {

constexpr size_t METADATA_VALUE_MAX = 500;  // Prefect truncates longer values

kj::String metadataValue(kj::StringPtr value) {
  return kj::str(value.slice(0, std::min(value.size(), METADATA_VALUE_MAX)));
}

}  // namespace

kj::String randomArtifactId() {
  uint8_t bytes[16];
  KJ_SYSCALL(getrandom(bytes, sizeof(bytes), 0));
  return kj::encodeHex(bytes);
}

Artifact artifactFor(kj::String id, kj::StringPtr key, kj::StringPtr type,
                     kj::StringPtr description, kj::StringPtr dataJson,
                     const FlowRunSummary& flow, kj::StringPtr policies,
                     kj::StringPtr taskRunId) {
  auto body = kj::str(
      "{\"key\":", key.size() > 0 ? jsonQuoted(key) : kj::str("null"),
      ",\"type\":", jsonQuoted(type),
      ",\"description\":", jsonQuoted(description), ",\"data\":", dataJson,
      ",\"metadata_\":{\"tracer_version\":", jsonQuoted(TRACER_VERSION),
      ",\"tracer_artifact_id\":", jsonQuoted(id),
      ",\"flow\":", jsonQuoted(metadataValue(flow.flowName)),
      ",\"deployment\":", jsonQuoted(metadataValue(flow.deploymentName)),
      ",\"deployment_id\":", jsonQuoted(metadataValue(flow.deploymentId)),
      ",\"flow_state\":", jsonQuoted(flow.state),
      ",\"policies\":", jsonQuoted(metadataValue(policies)), "}",
      ",\"flow_run_id\":", isUuid(flow.flowRunId) ? jsonQuoted(flow.flowRunId) : kj::str("null"),
      taskRunId == nullptr ? kj::str() : kj::str(",\"task_run_id\":", jsonQuoted(taskRunId)),
      "}");
  return Artifact{kj::str(key), kj::str(type), kj::mv(id), kj::mv(body)};
}

}  // namespace tracer
