#include "observe/ended_task_notes.h"

namespace tracer {

bool raiseTimes(untracked_times& times, const untracked_times& to) {
  bool later = false;
  for (uint32_t kind = 0; kind < UNTRACKED_KINDS; ++kind) {
    if (to.at[kind] > times.at[kind]) {
      times.at[kind] = to.at[kind];
      later = true;
    }
  }
  return later;
}

untracked_times EndedTaskNotes::of(uint32_t tid) const {
  KJ_IF_MAYBE(note, notes.find(tid)) { return note->times; }
  return untracked_times{};
}

void EndedTaskNotes::raise(uint32_t tid, const untracked_times& times) {
  untracked_times raised = of(tid);
  if (!raiseTimes(raised, times)) return;
  uint64_t serial = nextSerial++;
  notes.upsert(tid, Note{raised, serial}, [](Note& old, Note&& latest) { old = latest; });
  order.emplace_back(tid, serial);
  // Stale entries go too, so `order` stays within twice the notes kept.
  while (notes.size() > capacity || order.size() > 2 * capacity) {
    auto [oldest, itsSerial] = order.front();
    order.pop_front();
    KJ_IF_MAYBE(note, notes.find(oldest)) {
      if (note->serial == itsSerial) notes.erase(oldest);
    }
  }
}

}  // namespace tracer
