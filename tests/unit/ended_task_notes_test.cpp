// The sidecar's note of what a thread did last while tracked, kept for its
// next task: raised, never lowered; forgotten once a task takes the thread
// over; past its capacity the oldest note goes, not a newer one.
#include <catch2/catch.hpp>

#include "observe/ended_task_notes.h"

using namespace tracer;

namespace {

untracked_times times(unsigned long long clone, unsigned long long socket) {
  untracked_times t{};
  t.at[UNTRACKED_CLONE] = clone;
  t.at[UNTRACKED_SOCKET] = socket;
  return t;
}

}  // namespace

TEST_CASE("a thread's note keeps the latest of each time, and goes when a task takes it over") {
  EndedTaskNotes notes;
  CHECK(notes.of(7).at[UNTRACKED_CLONE] == 0);
  notes.raise(7, times(0, 0));
  CHECK(notes.size() == 0);  // nothing to note
  notes.raise(7, times(100, 50));
  notes.raise(7, times(90, 70));
  CHECK(notes.of(7).at[UNTRACKED_CLONE] == 100);
  CHECK(notes.of(7).at[UNTRACKED_SOCKET] == 70);
  CHECK(notes.of(8).at[UNTRACKED_SOCKET] == 0);
  notes.forget(7);
  CHECK(notes.of(7).at[UNTRACKED_CLONE] == 0);
  CHECK(notes.size() == 0);
}

TEST_CASE("past its capacity the oldest note goes, and a note raised again is not the oldest") {
  EndedTaskNotes notes(3);
  notes.raise(1, times(10, 0));
  notes.raise(2, times(20, 0));
  notes.raise(3, times(30, 0));
  notes.raise(1, times(11, 0));  // raised again: now the newest
  notes.raise(4, times(40, 0));
  CHECK(notes.size() == 3);
  CHECK(notes.of(2).at[UNTRACKED_CLONE] == 0);  // the oldest went
  CHECK(notes.of(1).at[UNTRACKED_CLONE] == 11);
  CHECK(notes.of(3).at[UNTRACKED_CLONE] == 30);
  CHECK(notes.of(4).at[UNTRACKED_CLONE] == 40);
}

TEST_CASE("notes forgotten by the thousand do not push out the notes kept after them") {
  EndedTaskNotes notes(4);
  for (uint32_t tid = 100; tid < 10100; ++tid) {
    notes.raise(tid, times(tid, 0));
    notes.forget(tid);  // its next task came
  }
  notes.raise(1, times(5, 5));
  notes.raise(2, times(6, 6));
  CHECK(notes.size() == 2);
  CHECK(notes.of(1).at[UNTRACKED_SOCKET] == 5);
  CHECK(notes.of(2).at[UNTRACKED_SOCKET] == 6);
}
