// goro runtime: goroutines on an M:N work-stealing scheduler.
//
//   #include <goro/goro.hpp>
//
//   int main() {
//     return goro::run([] {
//       goro::Chan<int> results;
//       for (int i = 0; i < 3; ++i) goro::go([=] { results.send(i * i); });
//       int sum = 0;
//       for (int i = 0; i < 3; ++i) sum += *results.recv();
//       return sum == 5 ? 0 : 1;
//     });
//   }
//
// `run` starts the runtime and runs its argument as goroutine 1. `go` spawns a goroutine
// (a few KiB of lazily committed stack). Goroutines are cooperative: they switch at channel
// operations, locks, timers, `yield()` and `blocking()`. Never hold a std::mutex across
// one of those, and wrap blocking system calls in `goro::blocking(...)`: a goroutine that
// blocks its worker thread holds up every goroutine queued behind it until, after ~10 ms,
// the runtime's monitor hands them to a spare thread (one more thread per stuck goroutine).
// `thread_local` variables are per worker thread, not per goroutine.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "goro/detail/core.hpp"

namespace goro {

enum class OnFatal { exit, raise };

struct Options {
  int procs = 0;               // worker threads; 0 = env GORO_MAXPROCS, else hardware threads
  std::size_t stack_size = 0;  // per-goroutine stack reservation; 0 = runtime default (256 KiB)
  OnFatal on_fatal = OnFatal::exit;
  // While run() is active, SIGQUIT (Ctrl-\) prints "SIGQUIT: quit", a blank line and the
  // dump of every goroutine to stderr, then exits with status 2, as Go does. The previous
  // disposition is restored when run() returns. false: SIGQUIT is left alone.
  bool handle_sigquit = true;
};

// Thrown by run() under OnFatal::raise when a goroutine let an exception escape; the
// original exception is nested (std::rethrow_if_nested yields it).
struct Panic : std::runtime_error, std::nested_exception {
  explicit Panic(const std::string& what) : std::runtime_error(what) {}
};
// Thrown by run() under OnFatal::raise when every goroutine is blocked forever.
struct Deadlock : std::runtime_error {
  explicit Deadlock(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
// Calls f through a type-erased runner (run_main, run_blocking: it calls fn(arg) once,
// possibly on another stack or thread) and hands back f's result: a value, a reference
// or nothing.
template <class F, class Runner>
decltype(auto) call_through(F& f, Runner runner) {
  using R = std::invoke_result_t<F&>;
  if constexpr (std::is_void_v<R>) {
    runner([](void* p) { (*static_cast<F*>(p))(); }, static_cast<void*>(std::addressof(f)));
  } else if constexpr (std::is_reference_v<R>) {
    struct Ctx {
      F* fn;
      std::remove_reference_t<R>* out;
    } ctx{std::addressof(f), nullptr};
    runner(
        [](void* p) {
          auto* c = static_cast<Ctx*>(p);
          c->out = std::addressof((*c->fn)());
        },
        &ctx);
    return static_cast<R>(*ctx.out);
  } else {
    struct Ctx {
      F* fn;
      std::optional<R> out;
    } ctx{std::addressof(f), std::nullopt};
    runner(
        [](void* p) {
          auto* c = static_cast<Ctx*>(p);
          c->out.emplace((*c->fn)());
        },
        &ctx);
    return R(std::move(*ctx.out));
  }
}
}  // namespace detail

// Starts a runtime, runs `main` as goroutine 1 and returns its result when it returns.
template <class F>
decltype(auto) run(F&& main, Options opts = {}) {
  detail::RunOptions ro{opts.procs, opts.stack_size, opts.on_fatal == OnFatal::raise,
                        opts.handle_sigquit};
  return detail::call_through(
      main, [&ro](void (*fn)(void*), void* arg) { detail::run_main(ro, fn, arg); });
}

// Spawns f(args...) as a new goroutine; args are decay-copied. Records the caller for dumps.
template <class F, class... Args>
[[gnu::noinline]] void go(F&& f, Args&&... args) {
  detail::spawn(__builtin_return_address(0), std::forward<F>(f), std::forward<Args>(args)...);
}

void yield();                  // runtime.Gosched: let other goroutines run
std::uint64_t goroutine_id();  // 1 for the main goroutine; 0 outside goroutines
std::size_t num_goroutines();  // live goroutines, main included
int procs();                   // worker threads of the running runtime (0 outside run)
void dump(std::ostream& out);  // every goroutine: id, state, wait reason, time waited, creator

// One live goroutine, as the dump shows it.
struct GoroutineInfo {
  std::uint64_t id = 0;
  std::string state;  // "running", "runnable" or the wait reason
  // Time in that wait (coarse clock); for "running", how long it has kept its worker without
  // switching, once that exceeds ~10 ms (sysmon's sample); else 0.
  std::chrono::nanoseconds waited{0};
  std::string created_at;  // "file.cpp:42 in f"; only with_creation_sites
};
// A snapshot of the running runtime's goroutines, ordered by id (empty outside run). For
// tests that assert nothing leaked, and for operators. Symbolising creation sites runs
// addr2line: ask for them only when you print them.
std::vector<GoroutineInfo> goroutines(bool with_creation_sites = false);

// Runs f on a helper OS thread and parks the calling goroutine until it returns (for
// blocking system calls and libraries that block their thread). Rethrows f's exception.
// errno, after it returns, is what f left on the helper thread (a C call's error cause).
template <class F>
decltype(auto) blocking(F&& f) {
  return detail::call_through(f,
                              [](void (*fn)(void*), void* arg) { detail::run_blocking(fn, arg); });
}

// Registers a thread outside goro::run that will wake goroutines (try_send, try_recv,
// close on their channels). While any registration of the running runtime is alive, every
// goroutine being blocked is not reported as a deadlock (the thread may still wake one);
// with none, deadlock detection is exact. Create it inside run, move it into the thread:
//
//   goro::Chan<int> ch(1);
//   std::thread feeder([ch, reg = goro::ForeignThread()]() mutable {
//     ch.try_send(42);  // reg dies with the lambda: from then on no wake-ups from here
//   });
//
// A ForeignThread that outlives its run is harmless (its destructor does nothing then).
class ForeignThread {
 public:
  ForeignThread();  // throws std::logic_error outside goro::run
  ForeignThread(ForeignThread&& other) noexcept;
  ForeignThread& operator=(ForeignThread&& other) noexcept;
  ~ForeignThread();

 private:
  void release() noexcept;
  std::uint64_t run_seq_ = 0;  // the run it belongs to; 0 once moved from or released
};

}  // namespace goro
