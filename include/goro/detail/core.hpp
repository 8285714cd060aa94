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

namespace goro::detail {

struct G;  // a goroutine (src/scheduler.hpp)

// Throws std::logic_error("goro: <op> called outside goro::run") unless on a goroutine;
G* require_goroutine(const char* op);  // returns the running goroutine

// ---- spawning ----
// Reserves a goroutine whose stack also holds its closure (size/align bytes at *closure).
G* spawn_reserve(std::size_t size, std::size_t align, void** closure);
// Makes it runnable: entry(closure) runs the closure and destroys it.
void spawn_commit(G* g, void (*entry)(void*), const void* creator_pc) noexcept;
// Gives back a reserved goroutine whose closure could not be constructed.
void spawn_abort(G* g) noexcept;

// Runs fn when the scope ends, however it ends.
template <class F>
class ScopeExit {
 public:
  explicit ScopeExit(F fn) : fn_(std::move(fn)) {}
  ~ScopeExit() { fn_(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  F fn_;
};

template <class C>
void closure_entry(void* p) {
  C* c = static_cast<C*>(p);
  ScopeExit destroy([c] { c->~C(); });
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
  bool handle_sigquit;
};
// Runs main_fn(arg) as goroutine 1 in a new runtime; returns when it returns; throws Panic /
// Deadlock under OnFatal::raise.
void run_main(const RunOptions& opts, void (*main_fn)(void*), void* arg);

// ---- blocking ----
// Runs fn(arg) on a helper OS thread while the calling goroutine is parked; rethrows.
void run_blocking(void (*fn)(void*), void* arg);

}  // namespace goro::detail
