// goro internal: timers (sleep, after, Timer, Ticker, and function timers for Context and
// I/O deadlines), on the timer heap of the active run (timer_heap.hpp). Workers run due
// timers from their scheduling loop and sleep no longer than the earliest deadline, so there
// is no timer thread.
//
// Which heap: every Runtime owns one (Runtime::timers), cleared and closed at the end of its
// run. A node armed while no run is active (a Timer, Ticker or Context deadline created
// before run(), or by a foreign thread after it ended) goes into the process's pending heap,
// which the next run adopts when it starts; so such a timer fires in the next run, as it did
// when the heap was a process global. A node records its heap (TimerNode::home), so stop
// and reset work from any thread, inside or outside a run.
//
// References to an owned chan node: its creator's (Timer/Ticker object, or after() until it
// returns), the heap's while armed, a firing worker's while it fires, and the channel's,
// held through ChanCore::on_last_user and released by that hook when the channel's last
// user handle goes (then the node is stopped: nobody can receive what it would send). The
// node holds one channel reference (chan), dropped when the node is freed; so a timer
// nobody can observe is collected, as Go 1.23 does.
// A callback runs outside the lock with a reference held (owned nodes); a sleep node lives
// on its goroutine's stack and is never touched after ready(). Park steps (sleep's unlock)
// run on the scheduler after the switch and read nothing on the sleeper's stack: once the
// heap lock is released the sleeper may be fired and running on another worker.
//
// Lock order: the pending heap's lock, then a run's heap lock (adoption only); both are
// innermost otherwise. Callbacks, hooks and releases run without either.
#pragma once

#include <cstdint>
#include <functional>

#include "goro/time.hpp"
#include "timer_heap.hpp"

namespace goro::detail {

struct Runtime;

// A timer that runs fn (on a worker's scheduler context; it must not park) at when_ns.
// Callable from any thread, inside or outside a run; stop with timer_stop and drop the
// returned reference with timer_release (include/goro/time.hpp).
TimerNode* timer_new_func(std::function<void()> fn, std::int64_t when_ns);

// Start of a run (after the runtime is published): take over the timers armed meanwhile.
void adopt_pending_timers(Runtime* rt) noexcept;
// End of a run (its workers joined): drop every timer of rt's heap and close it.
void clear_timers(Runtime* rt) noexcept;

}  // namespace goro::detail
