#pragma once
// The answer to one request, filled in on the library's event-loop thread and
// awaited, with a deadline, by the caller's thread. Whoever gives up first
// simply drops its reference.

#include <kj/mutex.h>
#include <kj/refcount.h>
#include <kj/string.h>
#include <kj/time.h>

namespace tracer::client {

class Outcome final: public kj::AtomicRefcounted {
 public:
  enum class Status { PENDING, OK, FAILED };

  kj::Own<const Outcome> addRef() const { return kj::atomicAddRef(*this); }

  void succeed(kj::String value = kj::String()) const { settle(Status::OK, kj::mv(value)); }
  void fail(kj::String error) const { settle(Status::FAILED, kj::mv(error)); }

  // Waits up to `timeout` for the answer. On OK, `text` is the value; on FAILED
  // the error; on PENDING, a "no answer within" message.
  Status await(kj::Duration timeout, kj::String& text) const {
    return state.when([](const State& s) { return s.status != Status::PENDING; },
                      [&](const State& s) {
                        text = s.status == Status::PENDING
                            ? kj::str("the sidecar did not answer within ",
                                      timeout / kj::MILLISECONDS, " ms")
                            : kj::str(s.text);
                        return s.status;
                      },
                      timeout);
  }

  Status peek() const { return state.lockShared()->status; }

  // The request left for the sidecar (it is in the socket).
  void markSent() const { state.lockExclusive()->sent = true; }
  // Waits up to `timeout` for the request to be sent or answered.
  void awaitSent(kj::Duration timeout) const {
    state.when([](const State& s) { return s.sent || s.status != Status::PENDING; },
               [](const State&) {}, timeout);
  }

 private:
  struct State {
    Status status = Status::PENDING;
    kj::String text;
    bool sent = false;
  };

  void settle(Status status, kj::String text) const {
    auto locked = state.lockExclusive();
    if (locked->status != Status::PENDING) return;
    locked->status = status;
    locked->text = kj::mv(text);
  }

  kj::MutexGuarded<State> state;
};

}  // namespace tracer::client
