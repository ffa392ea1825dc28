#include "policy/matcher.h"

#include <algorithm>

namespace tracer::policy {

namespace {

// Empty when `policy` applies to `subject`, else the first rule that fails.
std::string mismatch(const Policy& policy, const Subject& subject) {
  const Match& m = policy.match;
  const struct {
    const char* field;
    const std::shared_ptr<RE2>& pattern;
    const std::string& value;
  } rules[] = {{"flow", m.flow, subject.flow},
               {"task", m.task, subject.task},
               {"deployment", m.deployment, subject.deployment},
               {"work_pool", m.workPool, subject.workPool}};
  for (auto& rule: rules) {
    if (rule.pattern && !RE2::FullMatch(rule.value, *rule.pattern)) {
      return std::string(rule.field) + " '" + rule.value + "' does not match '" +
             rule.pattern->pattern() + "'";
    }
  }
  for (auto& tag: m.tags) {
    if (std::find(subject.tags.begin(), subject.tags.end(), tag) == subject.tags.end()) {
      return "tag '" + tag + "' is missing";
    }
  }
  return "";
}

}  // namespace

const Policy* firstMatch(const PolicySet& set, const Subject& subject) {
  for (auto& policy: set.policies) {
    if (mismatch(policy, subject).empty()) return &policy;
  }
  return nullptr;
}

const Policy* Matcher::match(const Subject& subject) {
  std::string key = subject.flow + '\0' + subject.task + '\0' + subject.deployment + '\0' +
                    subject.workPool;
  std::vector<std::string> tags = subject.tags;
  std::sort(tags.begin(), tags.end());
  for (auto& tag: tags) key += '\0' + tag;
  if (const Policy* const* known = remembered.find(key)) return *known;
  return remembered.put(key, firstMatch(set, subject));
}

std::vector<Verdict> explain(const PolicySet& set, const Subject& subject) {
  std::vector<Verdict> verdicts;
  for (auto& policy: set.policies) {
    auto why = mismatch(policy, subject);
    verdicts.push_back(Verdict{&policy, why.empty(), why.empty() ? "matches" : why});
    if (why.empty()) break;
  }
  return verdicts;
}

}  // namespace tracer::policy
