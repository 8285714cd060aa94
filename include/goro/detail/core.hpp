// goro internal: the interface between the header templates and the runtime (src/).
// Nothing here is part of the public API; names may change at any time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

#include "goro/detail/lock.hpp"

namespace goro::detail {

struct G;  // a goroutine (src/scheduler.hpp)

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
// Throws std::logic_error("goro: <op> called outside goro::run") unless on a goroutine.
void require_goroutine(const char* op);

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


std::int64_t monotonic_ns() noexcept;

// ---- spawning ----
// Reserves a goroutine whose stack also holds its closure (size/align bytes at *closure).
G* spawn_reserve(std::size_t size, std::size_t align, void** closure);
// Makes it runnable: entry(closure) runs the closure and destroys it.
void spawn_commit(G* g, void (*entry)(void*), const void* creator_pc) noexcept;
// Gives back a reserved goroutine whose closure could not be constructed.
void spawn_abort(G* g) noexcept;

template <class C>
void closure_entry(void* p) {
  C* c = static_cast<C*>(p);
  struct Destroy {
    C* c;
    ~Destroy() { c->~C(); }
  } destroy{c};
  (*c)();
}

template <class F, class... Args>
void spawn(const void* creator_pc, F&& f, Args&&... args) {
  auto closure = [fn = std::decay_t<F>(std::forward<F>(f)),
                  args =
                      std::make_tuple(std::decay_t<Args>(std::forward<Args>(args))...)]() mutable {
    std::apply(fn, std::move(args));
  };
  using C = decltype(closure);
  void* where = nullptr;
  G* g = spawn_reserve(sizeof(C), alignof(C), &where);
  try {
    ::new (where) C(std::move(closure));
  } catch (...) {
    spawn_abort(g);
    throw;
  }
  spawn_commit(g, &closure_entry<C>, creator_pc);
}

// ---- run ----
struct RunOptions {
  int procs;
  std::size_t stack_size;
  bool raise;
};
// Runs main_fn(arg) as goroutine 1 in a new runtime; returns when it returns; throws Panic /
// Deadlock under OnFatal::raise.
void run_main(const RunOptions& opts, void (*main_fn)(void*), void* arg);

// ---- blocking ----
// Runs fn(arg) on a helper OS thread while the calling goroutine is parked; rethrows.
void run_blocking(void (*fn)(void*), void* arg);

}  // namespace goro::detail
