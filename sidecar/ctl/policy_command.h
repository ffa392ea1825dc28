#pragma once
// `tracerctl policy check DIR` and `tracerctl policy explain`: policy files as
// code, checked in CI and explained to the people who write them.

#include <kj/main.h>

#include <cstdio>
#include <string>
#include <vector>

#include "policy/detectors.h"
#include "policy/matcher.h"
#include "policy/placement.h"
#include "policy/policy_cases.h"
#include "policy/policy_loader.h"
#include "policy/run_cost.h"

namespace tracer {

class PolicyCommand {
 public:
  explicit PolicyCommand(kj::ProcessContext& context): context(context) {}

  kj::MainFunc getMain() {
    return kj::MainBuilder(context, "tracerctl policy", "Checks and explains policy files.")
        .addSubCommand("check", KJ_BIND_METHOD(*this, checkMain),
                       "Lint a policy directory: every error as file:line:col, non-zero exit.")
        .addSubCommand("test", KJ_BIND_METHOD(*this, testMain),
                       "Run policy unit tests: recorded runs in, expected findings out.")
        .addSubCommand("explain", KJ_BIND_METHOD(*this, explainMain),
                       "Which policy applies to a task, and why the ones before it do not.")
        .build();
  }

 private:
  kj::MainFunc checkMain() {
    return kj::MainBuilder(context, "tracerctl policy check",
                           "Loads DIR/*.yaml as the sidecar would and reports every problem.")
        .expectArg("<dir>", KJ_BIND_METHOD(*this, setDirectory))
        .callAfterParsing(KJ_BIND_METHOD(*this, check))
        .build();
  }

  kj::MainFunc testMain() {
    return kj::MainBuilder(context, "tracerctl policy test",
                           "Loads DIR's policies and checks each case of CASES.yaml against them.")
        .expectArg("<dir>", KJ_BIND_METHOD(*this, setDirectory))
        .expectArg("<cases.yaml>", KJ_BIND_METHOD(*this, setCases))
        .callAfterParsing(KJ_BIND_METHOD(*this, test))
        .build();
  }

  kj::MainBuilder::Validity setCases(kj::StringPtr value) {
    casesPath = value.cStr();
    return true;
  }

  kj::MainBuilder::Validity test() {
    auto loaded = policy::loadPolicyDirectory(directory);
    auto cases = policy::loadPolicyCases(casesPath);
    for (auto& error: loaded.errors) fprintf(stderr, "%s\n", error.text().c_str());
    for (auto& error: cases.errors) fprintf(stderr, "%s\n", error.text().c_str());
    if (!loaded.ok() || !cases.errors.empty()) {
      context.exitError("cannot run the cases (errors above)");
    }
    policy::Matcher matcher(loaded.set);
    size_t failed = 0;
    for (auto& c: cases.cases) {
      auto problem = policy::runPolicyCase(matcher, c);
      if (problem.empty()) {
        printf("PASS %s\n", c.name.c_str());
      } else {
        ++failed;
        printf("FAIL %s (%s:%d): %s\n", c.name.c_str(), casesPath.c_str(), c.line,
               problem.c_str());
      }
    }
    printf("%zu passed, %zu failed\n", cases.cases.size() - failed, failed);
    fflush(stdout);
    if (failed > 0) context.exitError(kj::str(failed, " case(s) failed"));
    return true;
  }

  kj::MainFunc explainMain() {
    return kj::MainBuilder(context, "tracerctl policy explain",
                           "Evaluates the match rules of DIR's policies, in order, for one task.")
        .addOptionWithArg({"policies"}, KJ_BIND_METHOD(*this, setDirectory), "<dir>",
                          "Policy directory (default: policies).")
        .addOptionWithArg({"flow"}, KJ_BIND_METHOD(*this, setFlow), "<name>", "Flow name.")
        .addOptionWithArg({"task"}, KJ_BIND_METHOD(*this, setTask), "<name>", "Task name.")
        .addOptionWithArg({"deployment"}, KJ_BIND_METHOD(*this, setDeployment), "<name>",
                          "Deployment name.")
        .addOptionWithArg({"work-pool"}, KJ_BIND_METHOD(*this, setWorkPool), "<name>",
                          "Work pool name.")
        .addOptionWithArg({"tags"}, KJ_BIND_METHOD(*this, setTags), "<a,b>", "Task tags.")
        .callAfterParsing(KJ_BIND_METHOD(*this, explain))
        .build();
  }

  kj::MainBuilder::Validity setDirectory(kj::StringPtr value) {
    directory = value.cStr();
    return true;
  }
  kj::MainBuilder::Validity setFlow(kj::StringPtr value) {
    subject.flow = value.cStr();
    return true;
  }
  kj::MainBuilder::Validity setTask(kj::StringPtr value) {
    subject.task = value.cStr();
    return true;
  }
  kj::MainBuilder::Validity setDeployment(kj::StringPtr value) {
    subject.deployment = value.cStr();
    return true;
  }
  kj::MainBuilder::Validity setWorkPool(kj::StringPtr value) {
    subject.workPool = value.cStr();
    return true;
  }
  kj::MainBuilder::Validity setTags(kj::StringPtr value) {
    std::string all = value.cStr();
    size_t start = 0;
    while (start <= all.size()) {
      size_t comma = all.find(',', start);
      if (comma == std::string::npos) comma = all.size();
      if (comma > start) subject.tags.push_back(all.substr(start, comma - start));
      start = comma + 1;
    }
    return true;
  }

  kj::MainBuilder::Validity check() {
    auto result = policy::loadPolicyDirectory(directory);
    if (!result.ok()) {
      for (auto& error: result.errors) fprintf(stderr, "%s\n", error.text().c_str());
      context.exitError(
          kj::str(result.errors.size(), result.errors.size() == 1 ? " error" : " errors"));
    }
    printf("%s: %zu polic%s OK\n", directory.c_str(), result.set.policies.size(),
           result.set.policies.size() == 1 ? "y" : "ies");
    fflush(stdout);  // KJ's main exits without flushing stdio
    return true;
  }

  kj::MainBuilder::Validity explain() {
    auto result = policy::loadPolicyDirectory(directory);
    if (!result.ok()) {
      for (auto& error: result.errors) fprintf(stderr, "%s\n", error.text().c_str());
      return kj::str("the policy set has errors (see tracerctl policy check)");
    }
    bool applied = false;
    for (auto& verdict: policy::explain(result.set, subject)) {
      printf("%-8s %s (%s:%d): %s\n", verdict.applies ? "APPLIES" : "skipped",
             verdict.policy->name.c_str(), verdict.policy->origin.file.c_str(),
             verdict.policy->origin.line, verdict.reason.c_str());
      if (verdict.applies) {
        printf("findings of %s:\n", verdict.policy->name.c_str());
        for (auto& line: policy::describeFindingRules(verdict.policy->findings)) {
          printf("  %s\n", line.c_str());
        }
        printf("prices: %s\n", policy::describePrices(verdict.policy->cost, subject.workPool).c_str());
        printf("profiles of %s (placement):\n", verdict.policy->name.c_str());
        for (auto& line: policy::describePlacementRules(verdict.policy->placement)) {
          printf("  %s\n", line.c_str());
        }
      }
      applied = applied || verdict.applies;
    }
    fflush(stdout);  // KJ's main exits without flushing stdio
    if (!applied) return "no policy applies (add a catch-all, as policies/default.yaml does)";
    return true;
  }

  kj::ProcessContext& context;
  std::string directory = "policies";
  std::string casesPath;
  policy::Subject subject;
};

}  // namespace tracer
