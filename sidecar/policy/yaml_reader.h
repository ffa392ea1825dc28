#pragma once
// Reading YAML the way policy files and policy test cases are read: every
// problem recorded with its file:line:col, unknown keys with the closest known
// one, numbers and quantities checked strictly.

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "policy/policy_loader.h"

namespace tracer::policy {

namespace yaml_detail {

inline size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

inline std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Null: return "nothing";
    default: return "'" + node.Scalar() + "'";
  }
}

}  // namespace yaml_detail

class YamlReader {
 public:
  YamlReader(std::string file, std::vector<Diagnostic>& errors)
      : file(std::move(file)), errors(errors) {}

  void error(const YAML::Node& at, const std::string& message) {
    auto mark = at.Mark();
    errors.push_back(Diagnostic{file, mark.line + 1, mark.column + 1, message});
  }
  void error(const YAML::Mark& mark, const std::string& message) {
    errors.push_back(Diagnostic{file, mark.line + 1, mark.column + 1, message});
  }

  // Calls `handle(key, value)` for each entry of a mapping whose keys are all
  // known; unknown keys are reported with the closest known one.
  bool mapping(const YAML::Node& node, const std::string& what,
               const std::vector<std::string>& known,
               const std::function<void(const std::string&, const YAML::Node&)>& handle) {
    if (!node.IsMap()) {
      error(node, what + " must be a mapping, not " + yaml_detail::describe(node));
      return false;
    }
    for (auto entry: node) {
      std::string key = entry.first.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string message = "unknown key '" + key + "' in " + what;
        std::string best;
        size_t bestDistance = 3;
        for (auto& candidate: known) {
          size_t d = yaml_detail::editDistance(key, candidate);
          if (d < bestDistance) {
            bestDistance = d;
            best = candidate;
          }
        }
        if (!best.empty()) message += " (did you mean '" + best + "'?)";
        error(entry.first, message);
        continue;
      }
      handle(key, entry.second);
    }
    return true;
  }

  bool text(const YAML::Node& node, const std::string& what, std::string& out) {
    if (!node.IsScalar()) {
      error(node, what + " must be a string, not " + yaml_detail::describe(node));
      return false;
    }
    out = node.Scalar();
    return true;
  }

  void number(const YAML::Node& node, const std::string& what, double low, double high,
              double& out) {
    if (!node.IsScalar()) {
      error(node, what + " must be a number, not " + yaml_detail::describe(node));
      return;
    }
    const std::string& s = node.Scalar();
    char* end;
    double value = strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(value)) {
      error(node, what + " must be a number, not '" + s + "'");
    } else if (value < low || value > high) {
      std::ostringstream range;
      range << what << " must be between " << low << " and " << high << ", not " << s;
      error(node, range.str());
    } else {
      out = value;
    }
  }

  void boolean(const YAML::Node& node, const std::string& what, bool& out) {
    if (!node.IsScalar() || (node.Scalar() != "true" && node.Scalar() != "false")) {
      error(node, what + " must be true or false, not " +
                      (node.IsScalar() ? "'" + node.Scalar() + "'" : yaml_detail::describe(node)));
      return;
    }
    out = node.Scalar() == "true";
  }

  void count(const YAML::Node& node, const std::string& what, uint64_t low, uint64_t& out) {
    if (!node.IsScalar()) {
      error(node, what + " must be a whole number, not " + yaml_detail::describe(node));
      return;
    }
    const std::string& s = node.Scalar();
    char* end;
    long long value = strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0') {
      error(node, what + " must be a whole number, not '" + s + "'");
    } else if (value < static_cast<long long>(low)) {
      error(node, what + " must be at least " + std::to_string(low) + ", not " + s);
    } else {
      out = static_cast<uint64_t>(value);
    }
  }

  template <typename T>
  void quantity(const YAML::Node& node, const std::string& what,
                std::optional<T> (*parse)(const std::string&, std::string&), T& out) {
    if (!node.IsScalar()) {
      error(node, what + " must be a quantity, not " + yaml_detail::describe(node));
      return;
    }
    std::string problem;
    auto value = parse(node.Scalar(), problem);
    if (!value) {
      error(node, what + ": " + problem);
    } else {
      out = *value;
    }
  }

  void regex(const YAML::Node& node, const std::string& what, std::shared_ptr<RE2>& out) {
    std::string pattern;
    if (!text(node, what, pattern)) return;
    RE2::Options options;
    options.set_log_errors(false);
    auto compiled = std::make_shared<RE2>(pattern, options);
    if (!compiled->ok()) {
      error(node, what + ": invalid regular expression: " + compiled->error());
    } else {
      out = compiled;
    }
  }

  // `off` / `false` switches a detector off.
  bool switchedOff(const YAML::Node& node) {
    return node.IsScalar() && (node.Scalar() == "off" || node.Scalar() == "false");
  }

 protected:
  std::string file;
  std::vector<Diagnostic>& errors;
};

}  // namespace tracer::policy
