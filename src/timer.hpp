// goro internal: timers. One binary heap for the process, ordered by deadline, under
// TimerHeap::mu (the innermost lock). Workers run due timers from their scheduling loop and
// sleep no longer than the earliest deadline, so there is no timer thread.
//
// Invariants (under mu): a node is in the heap iff heap_index >= 0; the heap holds one
// reference to every owned node in it; next_when mirrors the top's deadline (INT64_MAX
// when empty) and armed mirrors the size, so workers read both without the lock.
// period is written only under mu (arm, reset), because whichever worker fires a ticker
// reads it there.
// A callback runs outside the lock with a reference held (owned nodes); a sleep node lives
// on its goroutine's stack and is never touched after ready(). Park steps (sleep's unlock)
// run on the scheduler after the switch and read nothing on the sleeper's stack: once the
// heap lock is released the sleeper may be fired and running on another worker.
//
// References to an owned chan node: its creator's (Timer/Ticker object, or after() until it
// returns), the heap's while armed, a firing worker's while it fires, and the channel's,
// held through ChanCore::on_last_user and released by that hook when the channel's last
// user handle goes (then the node is stopped: nobody can receive what it would send). The
// node holds one channel reference (chan), dropped when the node is freed; so a timer
// nobody can observe is collected, as Go 1.23 does.
// Lock order: the heap lock is innermost; callbacks, hooks and releases run without it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "goro/time.hpp"

namespace goro::detail {

struct G;

struct TimerNode {
  enum class Kind : std::uint8_t { sleep, chan, func };
  std::int64_t when = 0;
  std::int64_t period = 0;  // > 0: a ticker
  std::int32_t heap_index = -1;
  bool owned = true;  // heap-allocated and reference counted
  Kind kind = Kind::chan;
  std::atomic<int> refs{1};
  G* g = nullptr;            // sleep
  ChanHandle chan;           // chan: Chan<Clock::time_point>, capacity 1
  std::function<void()> fn;  // func
};

// A timer that runs fn (on a worker's scheduler context; it must not park) at when_ns.
TimerNode* timer_new_func(std::function<void()> fn, std::int64_t when_ns);

}  // namespace goro::detail
