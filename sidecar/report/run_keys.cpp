#include "report/run_keys.h"

#include <kj/debug.h>
#include <kj/vector.h>

namespace tracer {

bool isUuid(kj::StringPtr text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                            (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

namespace {

// Artifact keys must match Prefect's ^[a-z0-9-]*$ and stay short enough to
// read in its UI: the names are cut (at most 7 + 40 + 1 + 24 + 1 + 8 + 6 = 87
// characters in all), never the id, which is what keeps two deployments apart.
constexpr size_t FLOW_SLUG_MAX = 40;
constexpr size_t DEPLOYMENT_SLUG_MAX = 24;
constexpr size_t ID_PREFIX = 8;  // a UUID's first group: 2^32 ids apart
constexpr size_t TASK_SLUG_MAX = 40;

char lowercase(char c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

// Lowercase letters and digits; every other run of characters becomes one dash,
// none at either end.
kj::String slug(kj::StringPtr text, size_t max) {
  kj::Vector<char> out;
  for (char c: text) {
    if (out.size() >= max) break;
    char lower = lowercase(c);
    if ((lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9')) {
      out.add(lower);
    } else if (out.size() > 0 && out.back() != '-') {
      out.add('-');
    }
  }
  while (out.size() > 0 && out.back() == '-') out.removeLast();
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

kj::String lowercased(kj::ArrayPtr<const char> text) {
  auto out = kj::heapString(text);
  for (char& c: out) c = lowercase(c);
  return out;
}

}  // namespace

std::string historyKey(const RunOwner& owner) {
  if (owner.deploymentId.size() == 0) return std::string("flow:") + owner.flow.cStr();
  return std::string("deployment:") + lowercased(owner.deploymentId).cStr();
}

kj::String artifactKey(const RunOwner& owner, ArtifactKind kind) {
  kj::Vector<kj::String> parts;
  parts.add(kj::str("tracer"));
  parts.add(slug(owner.flow, FLOW_SLUG_MAX));
  if (owner.deploymentId.size() > 0) {
    KJ_REQUIRE(isUuid(owner.deploymentId), "a deployment id is not a UUID", owner.deploymentId);
    parts.add(slug(owner.deploymentName, DEPLOYMENT_SLUG_MAX));
    parts.add(lowercased(owner.deploymentId.slice(0, ID_PREFIX)));
  }
  if (kind == ArtifactKind::TABLE) parts.add(kj::str("tasks"));
  kj::Vector<kj::StringPtr> named;
  for (auto& part: parts) {
    if (part.size() > 0) named.add(part);  // a name of only punctuation adds no "--"
  }
  return kj::strArray(named, "-");
}

kj::String taskArtifactKey(const RunOwner& owner, kj::StringPtr taskName) {
  auto task = slug(taskName, TASK_SLUG_MAX);
  return kj::str(artifactKey(owner, ArtifactKind::REPORT), "-task",
                 task.size() > 0 ? "-" : "", task);
}

}  // namespace tracer
