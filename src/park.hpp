// goro internal: parking and readying goroutines, the primitive every blocking operation
// (channels, select, the wait table, timers, blocking()) is built on.
#pragma once

#include <cstdint>

#include "goro/detail/core.hpp"
#include "goro/detail/lock.hpp"

namespace goro::detail {

// Why a goroutine is parked; the dump prints these with Go's words.
enum class WaitReason : std::uint8_t {
  none,
  chan_send,
  chan_receive,
  chan_send_nil,
  chan_receive_nil,
  select,
  select_no_cases,
  waitgroup_wait,
  mutex_lock,
  rwmutex_rlock,
  rwmutex_lock,
  cond_wait,
  sleep,
  io_wait,
  blocking_call,
};

// The running goroutine, or nullptr on a thread that is not running one.
G* current_g() noexcept;
std::int64_t monotonic_ns() noexcept;

// Parks the calling goroutine. After the switch to the scheduler, unlock(arg) runs there
// (typically releasing the lock under which the goroutine published itself as a waiter),
// so a waker can never resume a goroutine whose stack is still in use.
void park(WaitReason reason, void (*unlock)(void* arg), void* arg);
// Parks releasing `mu` (which the caller holds) once the goroutine is off its stack.
void park_unlock(WaitReason reason, Lock& mu) GORO_RELEASE(mu);
// Parks for good (a nil channel, an empty select): nothing can wake the goroutine; if the
// runtime stops, it is abandoned like any other parked goroutine.
[[noreturn]] void park_forever(WaitReason reason);
// Makes a parked goroutine runnable. Callable from any thread.
void ready(G* g) noexcept;

}  // namespace goro::detail
