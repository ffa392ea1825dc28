#pragma once
// Unit tests for policies: recorded runs in, expected policy, findings and
// readiness out (`tracerctl policy test DIR CASES.yaml`). See docs/policies.md.

#include <optional>
#include <string>
#include <vector>

#include "policy/detectors.h"
#include "policy/matcher.h"
#include "policy/observation.h"
#include "policy/policy_loader.h"

namespace tracer::policy {

struct PolicyCase {
  std::string name;
  int line = 0;
  Subject subject;
  // A case given as `flow_run:` is about a flow run's footprint (its task
  // FLOW_RUN_TASK): the findings on its allocation are judged there.
  Scope scope = Scope::TASK_RUN;
  Observation run;
  std::vector<Observation> earlier;  // oldest first
  std::optional<std::string> expectPolicy;
  std::optional<std::vector<std::string>> expectFindings;  // exactly these kinds, in any order
  std::optional<bool> expectRecommendation;                // ready or not
};

struct CasesResult {
  std::vector<PolicyCase> cases;
  std::vector<Diagnostic> errors;
};

CasesResult loadPolicyCases(const std::string& path);

// Empty when the case passes, else what differed.
std::string runPolicyCase(Matcher& matcher, const PolicyCase& testCase);

}  // namespace tracer::policy
