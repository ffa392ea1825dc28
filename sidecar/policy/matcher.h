#pragma once
// Which policy applies to a task: the first, in evaluation order, whose match
// rules all hold (RE2 full match on flow, task, deployment and work pool; every
// listed tag present). `explain` says why each earlier policy did not apply.

#include <string>
#include <vector>

#include "policy/lru_map.h"
#include "policy/policy.h"

namespace tracer::policy {

struct Subject {
  std::string flow, task, deployment, workPool;
  std::vector<std::string> tags;
};

const Policy* firstMatch(const PolicySet& set, const Subject& subject);

// firstMatch, remembered per subject: a task's runs recur, and with many
// policies the regular expressions dominate the cost of advising. One Matcher
// per policy set (a reload makes a new one). Subjects are names clients
// choose, so only the SUBJECTS_REMEMBERED used most recently are kept (some
// 2 MiB); a forgotten one is matched again.
class Matcher {
 public:
  static constexpr size_t SUBJECTS_REMEMBERED = 8192;

  explicit Matcher(const PolicySet& set): set(set) {}
  const Policy* match(const Subject& subject);
  size_t subjectsRemembered() const { return remembered.size(); }

 private:
  const PolicySet& set;
  LruMap<std::string, const Policy*> remembered{SUBJECTS_REMEMBERED};
};

struct Verdict {
  const Policy* policy;
  bool applies;
  std::string reason;  // why not, or "matches"
};

// One verdict per policy, up to and including the one that applies.
std::vector<Verdict> explain(const PolicySet& set, const Subject& subject);

}  // namespace tracer::policy
