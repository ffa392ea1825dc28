#pragma once
// A map of at most `capacity` entries: past it, the entry used least recently
// goes. For caches keyed by what clients name (subjects, tasks, deployments):
// a client chooses as many distinct names as it likes, so a cache that only
// grows is memory any client can take. Whoever uses one must be able to do
// without an evicted entry (compute it again, read it back from SQLite).
// Here, in the lowest folder, because policy/, store/ and prefect/ all use it.

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <stdexcept>
#include <utility>

namespace tracer::policy {

template <typename Key, typename Value>
class LruMap {
 public:
  explicit LruMap(size_t capacity): capacity(capacity) {
    if (capacity == 0) throw std::invalid_argument("an LruMap holds at least one entry");
  }

  // The entry's value, now the most recently used; nullptr if there is none.
  Value* find(const Key& key) {
    auto found = index.find(key);
    if (found == index.end()) return nullptr;
    order.splice(order.begin(), order, found->second);
    return &found->second->second;
  }

  // Sets the entry (the most recently used now); the least recently used
  // goes if that makes one too many.
  Value& put(const Key& key, Value value) {
    if (Value* present = find(key)) return *present = std::move(value);
    order.emplace_front(key, std::move(value));
    index.emplace(key, order.begin());
    if (order.size() > capacity) {
      index.erase(order.back().first);
      order.pop_back();
    }
    return order.front().second;
  }

  template <typename Predicate>
  void eraseIf(Predicate matches) {
    for (auto entry = order.begin(); entry != order.end();) {
      if (matches(entry->first)) {
        index.erase(entry->first);
        entry = order.erase(entry);
      } else {
        ++entry;
      }
    }
  }

  size_t size() const { return order.size(); }

 private:
  using Order = std::list<std::pair<Key, Value>>;
  size_t capacity;
  Order order;  // the most recently used first
  std::map<Key, typename Order::iterator> index;
};

}  // namespace tracer::policy
