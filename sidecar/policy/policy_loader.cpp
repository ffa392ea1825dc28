#include "policy/policy_loader.h"

#include <dirent.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "policy/quantity.h"
#include "policy/yaml_reader.h"

namespace tracer::policy {

std::string Diagnostic::text() const {
  if (line == 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

// Walks one file's document, recording problems with their positions.
class Walker final: public YamlReader {
 public:
  Walker(std::string file, std::vector<Diagnostic>& errors, uint32_t historyRunsKept)
      : YamlReader(std::move(file), errors), historyRunsKept(historyRunsKept) {}

  void policy(const YAML::Node& node, Policy& p) {
    bool named = false;
    mapping(node, "a policy",
            {"name", "description", "match", "history", "cpu", "memory", "findings", "cost",
             "placement"},
            [&](const std::string& key, const YAML::Node& value) {
              if (key == "name") {
                named = text(value, "name", p.name);
                if (named && p.name.empty()) {
                  error(value, "name must not be empty");
                }
              } else if (key == "description") {
                text(value, "description", p.description);
              } else if (key == "match") {
                matchRule(value, p.match);
              } else if (key == "history") {
                historyRule(value, p.history);
              } else if (key == "cpu") {
                cpuRule(value, p.cpu);
              } else if (key == "memory") {
                memoryRule(value, p.memory);
              } else if (key == "findings") {
                findingRules(value, p.findings);
              } else if (key == "cost") {
                costRule(value, p.cost);
              } else if (key == "placement") {
                placementRules(value, p.placement);
              }
            });
    if (node.IsMap() && !named && !node["name"]) error(node, "a policy needs a name");
    // A default the history cannot feed is as wrong as an asked-for one.
    if (!node.IsMap()) return;
    YAML::Node history = node["history"];  // undefined, not an error, when absent
    bool runsGiven = history && history.IsMap() && history["runs"];
    if (!runsGiven && p.history.runs > historyRunsKept) {
      error(history ? history : node,
            "history.runs is " + std::to_string(p.history.runs) + " by default, more than the " +
                std::to_string(historyRunsKept) +
                " runs of each task the history keeps (--history-runs): set history.runs");
    }
  }

  // Prices are per hour: the bounds catch a monthly price or a typo, far
  // above any cloud's on-demand price of a core or a GiB (docs/policies.md, "Cost").
  static constexpr double CORE_HOUR_MAX = 10, GIB_HOUR_MAX = 1;

  // One price of a mapping that must have both: one of the user's beside
  // one of the defaults would price runs at a mix nobody pays.
  void price(const YAML::Node& v, const std::string& what, const std::string& key, Prices& out,
             bool& cpu, bool& memory) {
    bool isCpu = key == "cpu_core_hour";
    (isCpu ? cpu : memory) = true;
    number(v, what + "." + key, 0, isCpu ? CORE_HOUR_MAX : GIB_HOUR_MAX,
           isCpu ? out.cpuCoreHour : out.memoryGibHour);
  }

  void bothPrices(const YAML::Node& node, const std::string& what, bool cpu, bool memory) {
    if (!cpu) error(node, what + " needs cpu_core_hour (a price per core-hour)");
    if (!memory) error(node, what + " needs memory_gib_hour (a price per GiB-hour)");
  }

  void costRule(const YAML::Node& node, Cost& c) {
    bool cpu = false, memory = false, source = false;
    bool ok = mapping(
        node, "cost", {"cpu_core_hour", "memory_gib_hour", "currency", "source", "work_pools"},
        [&](const std::string& k, const YAML::Node& v) {
          if (k == "cpu_core_hour" || k == "memory_gib_hour") {
            price(v, "cost", k, c.prices, cpu, memory);
          } else if (k == "currency") {
            if (text(v, "cost.currency", c.currency) && c.currency.empty()) {
              error(v, "cost.currency must not be empty");
            }
          } else if (k == "source") {
            source = text(v, "cost.source", c.source);
          } else if (!v.IsMap()) {
            error(v, "cost.work_pools must be a mapping of work pool names to prices, not " +
                         yaml_detail::describe(v));
          } else {
            for (auto pool: v) {
              std::string what = "cost.work_pools." + pool.first.Scalar();
              bool poolCpu = false, poolMemory = false;
              auto& prices = c.workPools[pool.first.Scalar()];
              if (mapping(pool.second, what, {"cpu_core_hour", "memory_gib_hour"},
                          [&](const std::string& pk, const YAML::Node& pv) {
                            price(pv, what, pk, prices, poolCpu, poolMemory);
                          })) {
                bothPrices(pool.second, what, poolCpu, poolMemory);
              }
            }
          }
        });
    if (!ok) return;
    bothPrices(node, "cost", cpu, memory);
    // The defaults' source would not say where these prices come from.
    if (!source) c.source = "policy file " + file;
  }

  // Cores a task can average are bounded by the largest machines; a GiB-per-core
  // bound above any instance family's catches a typo (a byte count).
  static constexpr double CORES_MAX = 1024, GIB_PER_CORE_MAX = 1024;

  void placementRules(const YAML::Node& node, PlacementRules& r) {
    mapping(node, "placement",
            {"compute_cores_above", "memory_gib_per_core_above", "memory_min", "disk_share_above",
             "external_share_above", "idle_cpu_share_below"},
            [&](const std::string& k, const YAML::Node& v) {
              std::string at = "placement." + k;
              if (k == "compute_cores_above") number(v, at, 0, CORES_MAX, r.computeCoresAbove);
              if (k == "memory_gib_per_core_above") {
                number(v, at, 0, GIB_PER_CORE_MAX, r.memoryGibPerCoreAbove);
              }
              if (k == "memory_min") quantity<uint64_t>(v, at, parseBytes, r.memoryMinBytes);
              if (k == "disk_share_above") number(v, at, 0, 1, r.diskShareAbove);
              if (k == "external_share_above") number(v, at, 0, 1, r.externalShareAbove);
              if (k == "idle_cpu_share_below") number(v, at, 0, 1, r.idleCpuShareBelow);
            });
  }

  void matchRule(const YAML::Node& node, Match& m) {
    mapping(node, "match", {"flow", "task", "deployment", "work_pool", "tags"},
            [&](const std::string& key, const YAML::Node& value) {
              if (key == "tags") {
                if (!value.IsSequence()) {
                  error(value, "match.tags must be a list of strings, not " + yaml_detail::describe(value));
                  return;
                }
                for (auto tag: value) {
                  std::string t;
                  if (text(tag, "a tag in match.tags", t)) m.tags.push_back(t);
                }
                return;
              }
              auto& slot = key == "flow" ? m.flow
                           : key == "task" ? m.task
                           : key == "deployment" ? m.deployment
                                                 : m.workPool;
              regex(value, "match." + key, slot);
            });
  }

  void historyRule(const YAML::Node& node, History& h) {
    uint64_t runs = h.runs, minRuns = h.minRuns;
    mapping(node, "history", {"runs", "min_runs"}, [&](const std::string& key, const YAML::Node& v) {
      uint64_t& asked = key == "runs" ? runs : minRuns;
      size_t before = errors.size();
      count(v, "history." + key, 1, asked);
      if (errors.size() == before && asked > historyRunsKept) {
        error(v, "history." + key + " (" + std::to_string(asked) + ") is more than the " +
                     std::to_string(historyRunsKept) +
                     " runs of each task the history keeps (--history-runs)");
      }
    });
    if (minRuns > runs) {
      error(node, "history.min_runs (" + std::to_string(minRuns) + ") cannot exceed history.runs (" +
                      std::to_string(runs) + ")");
    }
    h.runs = runs;
    h.minRuns = minRuns;
  }

  void cpuRule(const YAML::Node& node, CpuRule& c) {
    mapping(node, "cpu", {"percentile", "headroom", "flag_below_utilization", "min", "round_to"},
            [&](const std::string& key, const YAML::Node& v) {
              if (key == "percentile") number(v, "cpu.percentile", 1, 100, c.percentile);
              if (key == "headroom") number(v, "cpu.headroom", 0, 10, c.headroom);
              if (key == "flag_below_utilization") {
                number(v, "cpu.flag_below_utilization", 0, 1, c.flagBelowUtilization);
              }
              if (key == "min") quantity<double>(v, "cpu.min", parseCores, c.min);
              if (key == "round_to") {
                quantity<double>(v, "cpu.round_to", parseCores, c.roundTo);
                if (c.roundTo <= 0) error(v, "cpu.round_to must be more than 0");
              }
            });
  }

  void memoryRule(const YAML::Node& node, MemoryRule& m) {
    mapping(node, "memory",
            {"headroom", "oom_bump", "min", "round_to", "flag_below_utilization"},
            [&](const std::string& key, const YAML::Node& v) {
              if (key == "headroom") number(v, "memory.headroom", 0, 10, m.headroom);
              if (key == "oom_bump") number(v, "memory.oom_bump", 1, 10, m.oomBump);
              if (key == "flag_below_utilization") {
                number(v, "memory.flag_below_utilization", 0, 1, m.flagBelowUtilization);
              }
              if (key == "min") quantity<uint64_t>(v, "memory.min", parseBytes, m.min);
              if (key == "round_to") {
                quantity<uint64_t>(v, "memory.round_to", parseBytes, m.roundTo);
                if (m.roundTo == 0) error(v, "memory.round_to must be more than 0");
              }
            });
  }

  void findingRules(const YAML::Node& node, FindingRules& f) {
    auto detector = [&](const YAML::Node& value, const std::string& name, bool& enabled,
                        const std::vector<std::string>& keys,
                        const std::function<void(const std::string&, const YAML::Node&)>& set) {
      if (switchedOff(value)) {
        enabled = false;
        return;
      }
      mapping(value, "findings." + name, keys, set);
    };
    mapping(node, "findings",
            {"io_bound", "external_wait", "lock_wait", "gil_contention", "cpu_contention",
             "idle", "subprocess_churn", "slower_than_usual", "separate_tasks",
             "task_artifact", "live_artifact"},
            [&](const std::string& key, const YAML::Node& value) {
              std::string at = "findings." + key + ".";
              if (key == "live_artifact") {
                if (switchedOff(value)) {
                  f.liveArtifactNs = 0;
                } else {
                  quantity<uint64_t>(value, "findings.live_artifact", parseDuration,
                                     f.liveArtifactNs);
                  if (f.liveArtifactNs < 1000000000ull) {
                    error(value, "findings.live_artifact must be at least 1s, or off");
                    f.liveArtifactNs = 30ull * 1000000000;
                  }
                }
              } else if (key == "task_artifact") {
                if (switchedOff(value)) {
                  f.taskArtifact.clear();
                } else if (text(value, "findings.task_artifact", f.taskArtifact) &&
                           f.taskArtifact != "info" && f.taskArtifact != "warning" &&
                           f.taskArtifact != "critical") {
                  error(value, "findings.task_artifact must be info, warning, critical or off, "
                               "not '" + f.taskArtifact + "'");
                  f.taskArtifact = "critical";
                }
              } else if (key == "io_bound") {
                detector(value, key, f.ioBound, {"blocked_io_share_above"},
                         [&](const std::string& k, const YAML::Node& v) {
                           number(v, at + k, 0, 1, f.ioBoundBlockedShareAbove);
                         });
              } else if (key == "external_wait") {
                detector(value, key, f.externalWait, {"network_share_above", "cpu_share_below"},
                         [&](const std::string& k, const YAML::Node& v) {
                           number(v, at + k, 0, 1,
                                  k == "network_share_above" ? f.externalWaitNetworkShareAbove
                                                             : f.externalWaitCpuShareBelow);
                         });
              } else if (key == "lock_wait") {
                detector(value, key, f.lockWait, {"lock_share_above"},
                         [&](const std::string& k, const YAML::Node& v) {
                           number(v, at + k, 0, 1, f.lockWaitShareAbove);
                         });
              } else if (key == "gil_contention") {
                detector(value, key, f.gil, {"lock_share_above", "cpu_share_above"},
                         [&](const std::string& k, const YAML::Node& v) {
                           number(v, at + k, 0, 1,
                                  k == "lock_share_above" ? f.gilLockShareAbove
                                                          : f.gilCpuShareAbove);
                         });
              } else if (key == "cpu_contention") {
                detector(value, key, f.contention, {"runqueue_share_above"},
                         [&](const std::string& k, const YAML::Node& v) {
                           number(v, at + k, 0, 1, f.contentionRunqueueShareAbove);
                         });
              } else if (key == "idle") {
                detector(value, key, f.idle, {"cpu_share_below", "min_wall"},
                         [&](const std::string& k, const YAML::Node& v) {
                           if (k == "min_wall") {
                             quantity<uint64_t>(v, at + k, parseDuration, f.idleMinWallNs);
                           } else {
                             number(v, at + k, 0, 1, f.idleCpuShareBelow);
                           }
                         });
              } else if (key == "subprocess_churn") {
                detector(value, key, f.churn, {"short_lived_above"},
                         [&](const std::string& k, const YAML::Node& v) {
                           count(v, at + k, 0, f.churnShortLivedAbove);
                         });
              } else if (key == "slower_than_usual") {
                detector(value, key, f.slower, {"wall_vs_median_above"},
                         [&](const std::string& k, const YAML::Node& v) {
                           number(v, at + k, 1, 1000, f.slowerWallVsMedianAbove);
                         });
              } else if (key == "separate_tasks") {
                detector(value, key, f.separateTasks, {"light_wall_share_above"},
                         [&](const std::string& k, const YAML::Node& v) {
                           number(v, at + k, 0, 1, f.separateLightWallShareAbove);
                         });
              }
            });
  }

  void document(const YAML::Node& root, PolicySet& set) {
    if (!root.IsDefined() || root.IsNull()) {
      errors.push_back(Diagnostic{file, 0, 0, "empty file (expected 'version: 1' and 'policies:')"});
      return;
    }
    bool versioned = false, listed = false;
    mapping(root, "a policy file", {"version", "policies"},
            [&](const std::string& key, const YAML::Node& value) {
              if (key == "version") {
                versioned = true;
                if (!value.IsScalar() || value.Scalar() != "1") {
                  error(value, "unsupported version " + yaml_detail::describe(value) + " (this Tracer reads version 1)");
                }
                return;
              }
              listed = true;
              if (!value.IsSequence()) {
                error(value, "policies must be a list, not " + yaml_detail::describe(value));
                return;
              }
              for (auto entry: value) {
                Policy p;
                p.origin = Origin{file, entry.Mark().line + 1};
                size_t before = errors.size();
                policy(entry, p);
                if (errors.size() == before) set.policies.push_back(std::move(p));
              }
            });
    if (root.IsMap() && !versioned) error(root, "missing 'version: 1'");
    if (root.IsMap() && !listed) error(root, "missing 'policies:'");
  }

 private:
  uint32_t historyRunsKept;
};

void loadOne(const std::string& name, const std::function<YAML::Node()>& parse,
             uint32_t historyRunsKept, LoadResult& result) {
  try {
    Walker(name, result.errors, historyRunsKept).document(parse(), result.set);
  } catch (const YAML::ParserException& e) {
    result.errors.push_back(Diagnostic{name, e.mark.line + 1, e.mark.column + 1, e.msg});
  } catch (const YAML::BadFile&) {
    result.errors.push_back(Diagnostic{name, 0, 0, "cannot read the file"});
  } catch (const YAML::Exception& e) {
    result.errors.push_back(Diagnostic{name, e.mark.line + 1, e.mark.column + 1, e.msg});
  }
}

void finish(LoadResult& result, const std::string& where) {
  std::map<std::string, Origin> seen;
  std::vector<Policy> unique;
  for (auto& p: result.set.policies) {
    auto found = seen.find(p.name);
    if (found != seen.end()) {
      result.errors.push_back(Diagnostic{p.origin.file, p.origin.line, 3,
                                         "duplicate policy name '" + p.name + "' (first defined at " +
                                             found->second.file + ":" +
                                             std::to_string(found->second.line) + ")"});
      continue;
    }
    seen.emplace(p.name, p.origin);
    unique.push_back(std::move(p));
  }
  result.set.policies = std::move(unique);
  if (result.errors.empty() && result.set.policies.empty()) {
    result.errors.push_back(Diagnostic{where, 0, 0, "no policies: the set is empty"});
  }
}

}  // namespace

LoadResult loadPolicyFiles(const std::vector<std::string>& paths, uint32_t historyRunsKept) {
  LoadResult result;
  for (auto& path: paths) {
    loadOne(path, [&]() { return YAML::LoadFile(path); }, historyRunsKept, result);
  }
  finish(result, paths.empty() ? std::string("(no files)") : paths.front());
  return result;
}

LoadResult loadPolicyDirectory(const std::string& directory, uint32_t historyRunsKept) {
  std::vector<std::string> paths;
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) {
    LoadResult result;
    result.errors.push_back(Diagnostic{directory, 0, 0, "cannot open the policy directory"});
    return result;
  }
  while (auto* entry = readdir(dir)) {
    std::string name = entry->d_name;
    auto endsWith = [&](const std::string& suffix) {
      return name.size() > suffix.size() &&
             name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (endsWith(".yaml") || endsWith(".yml")) paths.push_back(directory + "/" + name);
  }
  closedir(dir);
  std::sort(paths.begin(), paths.end());
  LoadResult result = loadPolicyFiles(paths, historyRunsKept);
  if (paths.empty()) {
    result.errors.clear();
    result.errors.push_back(Diagnostic{directory, 0, 0, "no policy files (*.yaml) in the directory"});
  }
  return result;
}

LoadResult loadPolicyText(const std::string& name, const std::string& text,
                          uint32_t historyRunsKept) {
  LoadResult result;
  loadOne(name, [&]() { return YAML::Load(text); }, historyRunsKept, result);
  finish(result, name);
  return result;
}

}  // namespace tracer::policy
