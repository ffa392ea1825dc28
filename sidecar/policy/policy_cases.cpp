#include "policy/policy_cases.h"

#include <algorithm>

#include "policy/detectors.h"
#include "policy/quantity.h"
#include "policy/recommendation.h"
#include "policy/yaml_reader.h"

namespace tracer::policy {

namespace {

class CaseReader final: public YamlReader {
 public:
  using YamlReader::YamlReader;

  void document(const YAML::Node& root, std::vector<PolicyCase>& out) {
    mapping(root, "a cases file", {"cases"}, [&](const std::string&, const YAML::Node& list) {
      if (!list.IsSequence()) {
        error(list, "cases must be a list, not " + yaml_detail::describe(list));
        return;
      }
      for (auto entry: list) {
        PolicyCase c;
        c.line = entry.Mark().line + 1;
        size_t before = errors.size();
        readCase(entry, c);
        if (errors.size() == before) out.push_back(std::move(c));
      }
    });
  }

 private:
  void readCase(const YAML::Node& node, PolicyCase& c) {
    mapping(node, "a case", {"name", "task", "flow_run", "run", "history", "expect"},
            [&](const std::string& key, const YAML::Node& v) {
              if (key == "name") text(v, "name", c.name);
              if (key == "task") subject(v, "task", c.subject);
              if (key == "flow_run") {
                if (c.scope == Scope::FLOW_RUN || !c.subject.flow.empty()) {
                  error(v, "a case is about a task or a flow run, not both");
                }
                subject(v, "flow_run", c.subject);
                c.subject.task = FLOW_RUN_TASK;
                c.scope = Scope::FLOW_RUN;
              }
              if (key == "run") observation(v, c.run);
              if (key == "history") {
                if (!v.IsSequence()) {
                  error(v, "history must be a list of runs");
                  return;
                }
                for (auto run: v) {
                  Observation o;
                  observation(run, o);
                  c.earlier.push_back(o);
                }
              }
              if (key == "expect") expect(v, c);
            });
    if (c.name.empty()) error(node, "a case needs a name");
  }

  // `what`: "task", or "flow_run" (which has no task name).
  void subject(const YAML::Node& node, const std::string& what, Subject& s) {
    std::vector<std::string> keys = {"flow", "deployment", "work_pool", "tags"};
    if (what == "task") keys.push_back("task");
    mapping(node, what, keys, [&](const std::string& key, const YAML::Node& v) {
      if (key == "tags") {
        for (auto tag: v) {
          std::string t;
          if (text(tag, "a tag", t)) s.tags.push_back(t);
        }
        return;
      }
      text(v, what + "." + key, key == "flow"         ? s.flow
                                : key == "task"       ? s.task
                                : key == "deployment" ? s.deployment
                                                      : s.workPool);
    });
  }

  void observation(const YAML::Node& node, Observation& o) {
    mapping(node, "a run",
            {"wall", "cpu", "p95_cores", "max_cores", "runqueue", "blocked_io", "sleep",
             "network_wait", "top_endpoint", "top_endpoint_wait", "lock_wait", "child_wait",
             "timer", "pipe_wait", "shared_process", "peak_rss", "oom_kills", "short_lived", "allocated_cores", "allocated_memory"},
            [&](const std::string& key, const YAML::Node& v) {
              std::string at = "run." + key;
              if (key == "wall") quantity<uint64_t>(v, at, parseDuration, o.wallNs);
              if (key == "cpu") quantity<uint64_t>(v, at, parseDuration, o.cpuNs);
              if (key == "runqueue") quantity<uint64_t>(v, at, parseDuration, o.runqueueNs);
              if (key == "blocked_io") quantity<uint64_t>(v, at, parseDuration, o.blockedIoNs);
              if (key == "sleep") quantity<uint64_t>(v, at, parseDuration, o.sleepNs);
              if (key == "network_wait") {
                quantity<uint64_t>(v, at, parseDuration, o.networkWaitNs);
              }
              if (key == "top_endpoint") text(v, at, o.topEndpoint);
              if (key == "top_endpoint_wait") {
                quantity<uint64_t>(v, at, parseDuration, o.topEndpointWaitNs);
              }
              if (key == "lock_wait") quantity<uint64_t>(v, at, parseDuration, o.lockWaitNs);
              if (key == "child_wait") quantity<uint64_t>(v, at, parseDuration, o.childWaitNs);
              if (key == "timer") quantity<uint64_t>(v, at, parseDuration, o.timerNs);
              if (key == "pipe_wait") quantity<uint64_t>(v, at, parseDuration, o.pipeWaitNs);
              if (key == "shared_process") boolean(v, at, o.sharedProcess);
              if (key == "p95_cores") quantity<double>(v, at, parseCores, o.p95Cores);
              if (key == "max_cores") quantity<double>(v, at, parseCores, o.maxCores);
              if (key == "allocated_cores") quantity<double>(v, at, parseCores, o.allocatedCores);
              if (key == "peak_rss") quantity<uint64_t>(v, at, parseBytes, o.peakRssBytes);
              if (key == "allocated_memory") {
                quantity<uint64_t>(v, at, parseBytes, o.allocatedBytes);
              }
              if (key == "short_lived") count(v, at, 0, o.shortLived);
              if (key == "oom_kills") {
                uint64_t kills = 0;
                count(v, at, 0, kills);
                o.oomKills = kills;
              }
            });
  }

  void expect(const YAML::Node& node, PolicyCase& c) {
    mapping(node, "expect", {"policy", "findings", "recommendation"},
            [&](const std::string& key, const YAML::Node& v) {
              if (key == "policy") {
                std::string name;
                if (text(v, "expect.policy", name)) c.expectPolicy = name;
              } else if (key == "findings") {
                std::vector<std::string> kinds;
                for (auto kind: v) {
                  std::string k;
                  if (text(kind, "a finding kind", k)) kinds.push_back(k);
                }
                c.expectFindings = kinds;
              } else if (v.IsScalar() && (v.Scalar() == "ready" || v.Scalar() == "not_ready")) {
                c.expectRecommendation = v.Scalar() == "ready";
              } else {
                error(v, "expect.recommendation must be ready or not_ready");
              }
            });
  }
};

std::string joined(std::vector<std::string> kinds) {
  std::sort(kinds.begin(), kinds.end());
  std::string text = "[";
  for (auto& k: kinds) text += (text.size() > 1 ? ", " : "") + k;
  return text + "]";
}

}  // namespace

CasesResult loadPolicyCases(const std::string& path) {
  CasesResult result;
  try {
    CaseReader(path, result.errors).document(YAML::LoadFile(path), result.cases);
  } catch (const YAML::BadFile&) {
    result.errors.push_back(Diagnostic{path, 0, 0, "cannot read the file"});
  } catch (const YAML::Exception& e) {
    result.errors.push_back(Diagnostic{path, e.mark.line + 1, e.mark.column + 1, e.msg});
  }
  return result;
}

std::string runPolicyCase(Matcher& matcher, const PolicyCase& c) {
  const Policy* policy = matcher.match(c.subject);
  std::string applied = policy ? policy->name : "(none)";
  if (c.expectPolicy && *c.expectPolicy != applied) {
    return "expected policy " + *c.expectPolicy + ", got " + applied;
  }
  if (policy == nullptr) return c.expectFindings || c.expectRecommendation ? "no policy applies" : "";
  if (c.expectFindings) {
    std::vector<std::string> got;
    for (auto& f:
         detect(*policy, c.run, kj::arrayPtr(c.earlier.data(), c.earlier.size()), c.scope)) {
      got.push_back(f.kind);
    }
    if (joined(got) != joined(*c.expectFindings)) {
      return "expected findings " + joined(*c.expectFindings) + ", got " + joined(got);
    }
  }
  if (c.expectRecommendation) {
    auto runs = c.earlier;
    runs.push_back(c.run);
    bool ready = recommend(*policy, kj::arrayPtr(runs.data(), runs.size())).ready;
    if (ready != *c.expectRecommendation) {
      return std::string("expected the recommendation ") +
             (*c.expectRecommendation ? "ready" : "not ready") + ", it is " +
             (ready ? "ready" : "not ready");
    }
  }
  return "";
}

}  // namespace tracer::policy
