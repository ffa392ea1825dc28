#pragma once
// When a thread last started a thread or process and used a socket while it
// was tracked, noted as its task ends and kept for its next task: a
// registration that reaches the sidecar after that task began learns from it
// whether the thread did either since its client's reading, which the kernel
// then counted in the task before (bpf_collector.cpp). Only the sidecar
// writes and reads these, so they are kept here, not in a BPF map: no system
// call at a task's start or end. Bounded: past `capacity` threads whose task
// ended and that have had none since, the oldest note goes.

#include <kj/map.h>

#include <cstdint>
#include <deque>
#include <utility>

#include "task_state.h"

namespace tracer {

// Raises each of `times` to `to`'s where that is later; whether any was.
bool raiseTimes(untracked_times& times, const untracked_times& to);

class EndedTaskNotes {
 public:
  explicit EndedTaskNotes(size_t capacity = 16384): capacity(capacity) {}

  // The thread's note, or no times.
  untracked_times of(uint32_t tid) const;
  // Raises the thread's note to `times` where they are later (a new note if
  // it had none and any is set).
  void raise(uint32_t tid, const untracked_times& times);
  // A task has taken the thread over: what it does from here is counted there.
  void forget(uint32_t tid) { notes.erase(tid); }

  size_t size() const { return notes.size(); }

 private:
  struct Note {
    untracked_times times;
    uint64_t serial;  // which entry of `order` is this note's
  };
  size_t capacity;
  kj::HashMap<uint32_t, Note> notes;
  // Notes in the order they were raised, the oldest first. An entry whose
  // serial its tid's note no longer has is stale (forgotten, or raised again
  // since), skipped when it comes to the front.
  std::deque<std::pair<uint32_t, uint64_t>> order;
  uint64_t nextSerial = 0;
};

}  // namespace tracer
