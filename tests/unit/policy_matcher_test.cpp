// Policy matching: RE2 full match, tags, file order, first match wins.
#include <catch2/catch.hpp>

#include "policy/matcher.h"
#include "policy/policy_loader.h"

using namespace tracer::policy;

TEST_CASE("the first matching policy wins, and explain says why others did not") {
  auto result = loadPolicyText("p.yaml",
                               "version: 1\npolicies:\n"
                               "  - name: heavy\n    match: {flow: 'etl-.*', tags: [heavy]}\n"
                               "  - name: etl\n    match: {flow: 'etl-.*'}\n"
                               "  - name: default\n    match: {}\n");
  REQUIRE(result.ok());
  Subject etl{"etl-sales", "load", "", "", {"nightly"}};
  CHECK(firstMatch(result.set, etl)->name == "etl");
  auto verdicts = explain(result.set, etl);
  REQUIRE(verdicts.size() == 2);
  CHECK(verdicts[0].reason == "tag 'heavy' is missing");
  CHECK(verdicts[1].applies);

  Subject other{"reporting", "render", "", "", {}};
  CHECK(firstMatch(result.set, other)->name == "default");
  CHECK(explain(result.set, other)[1].reason == "flow 'reporting' does not match 'etl-.*'");

  // Full match: a prefix is not enough.
  Subject prefixed{"xetl-sales", "t", "", "", {"heavy"}};
  CHECK(firstMatch(result.set, prefixed)->name == "default");
}

TEST_CASE("the Matcher remembers answers per subject, tags in any order") {
  auto result = loadPolicyText("p.yaml",
                               "version: 1\npolicies:\n"
                               "  - name: tagged\n    match: {tags: [a, b]}\n"
                               "  - name: default\n    match: {}\n");
  REQUIRE(result.ok());
  Matcher matcher(result.set);
  Subject ab{"f", "t", "", "", {"a", "b"}};
  Subject ba{"f", "t", "", "", {"b", "a"}};
  Subject a{"f", "t", "", "", {"a"}};
  CHECK(matcher.match(ab)->name == "tagged");
  CHECK(matcher.match(ba)->name == "tagged");
  CHECK(matcher.match(a)->name == "default");
  CHECK(matcher.match(ab) == firstMatch(result.set, ab));
}

TEST_CASE("the Matcher remembers a bounded number of subjects and still matches the rest") {
  auto result = loadPolicyText("p.yaml",
                               "version: 1\npolicies:\n"
                               "  - name: etl\n    match: {flow: 'etl-.*'}\n"
                               "  - name: default\n    match: {}\n");
  REQUIRE(result.ok());
  Matcher matcher(result.set);
  size_t subjects = Matcher::SUBJECTS_REMEMBERED + 1000;
  for (size_t i = 0; i < subjects; ++i) {
    Subject subject{(i % 2 ? "etl-" : "other-") + std::to_string(i), "t", "", "", {}};
    REQUIRE(matcher.match(subject)->name == (i % 2 ? "etl" : "default"));
  }
  CHECK(matcher.subjectsRemembered() == Matcher::SUBJECTS_REMEMBERED);
  // The first subjects were forgotten: matched again, the same way.
  CHECK(matcher.match(Subject{"etl-1", "t", "", "", {}})->name == "etl");
  CHECK(matcher.match(Subject{"other-0", "t", "", "", {}})->name == "default");
}
