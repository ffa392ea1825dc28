// LruMap: the entry used least recently goes first, and only past capacity.
#include <catch2/catch.hpp>

#include <string>

#include "policy/lru_map.h"

using tracer::policy::LruMap;

TEST_CASE("an LruMap past its capacity forgets the entry used least recently") {
  LruMap<std::string, int> map(2);
  map.put("a", 1);
  map.put("b", 2);
  REQUIRE(map.find("a") != nullptr);  // now b is the least recently used
  map.put("c", 3);
  CHECK(map.size() == 2);
  CHECK(map.find("b") == nullptr);
  CHECK(*map.find("a") == 1);
  CHECK(*map.find("c") == 3);
  map.put("a", 10);  // replacing is no new entry
  CHECK(map.size() == 2);
  CHECK(*map.find("a") == 10);
}

TEST_CASE("an LruMap erases the entries a predicate picks") {
  LruMap<std::string, int> map(8);
  for (auto key: {"x1", "y1", "x2"}) map.put(key, 0);
  map.eraseIf([](const std::string& key) { return key[0] == 'x'; });
  CHECK(map.size() == 1);
  CHECK(map.find("x1") == nullptr);
  CHECK(map.find("y1") != nullptr);
  map.put("x3", 0);
  CHECK(map.size() == 2);
}
