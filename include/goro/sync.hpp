// goro sync: Go's sync.WaitGroup, Mutex, RWMutex, Once and Cond. They park the goroutine,
// never the worker thread.
//
//   goro::WaitGroup wg;
//   goro::Mutex mu;
//   std::map<int, std::string> out;
//   for (int id : ids)
//     wg.go([&, id] {                       // add(1); go(f then done())
//       auto v = fetch(id);
//       std::lock_guard lock(mu);
//       out[id] = v;
//     });
//   wg.wait();
//
// Lifetimes: a WaitGroup may be destroyed as soon as wait() returns and a Mutex as soon as
// its last holder unlocked it, even while the goroutine that called done()/unlock() is
// still returning.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "goro/detail/core.hpp"

namespace goro {

class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Throws std::logic_error("sync: negative WaitGroup counter") below zero (and undoes the
  // add: nothing is lost).
  void add(int delta = 1);
  void done() { add(-1); }
  void wait();
  // add(1), then go(f then done()). A done() that takes the counter below zero is a panic
  // of that goroutine, as in Go.
  template <class F>
  [[gnu::noinline]] void go(F&& f) {
    add(1);
    try {
      detail::spawn(__builtin_return_address(0),
                    [wg = this, fn = std::decay_t<F>(std::forward<F>(f))]() mutable {
                      try {
                        fn();
                      } catch (...) {
                        try {
                          wg->done();
                        } catch (...) {
                        }
                        throw;
                      }
                      wg->done();  // may throw: a panic, reported like any other
                    });
    } catch (...) {
      add(-1);
      throw;
    }
  }

 private:
  // Counter in the high 32 bits, parked waiters in the low 32 (as Go's state word); the
  // waiters themselves are in the runtime's address-keyed wait table.
  std::atomic<std::uint64_t> state_{0};
};

class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Parks until the lock is free. Throws std::logic_error outside goro::run.
  void lock() {
    detail::require_goroutine("sync.Mutex.Lock");
    std::uint64_t expected = 0;
    if (!state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
      lock_slow();
    }
  }
  bool try_lock() {
    std::uint64_t state = state_.load(std::memory_order_relaxed);
    return !(state & (kLocked | kHandOff)) &&
           state_.compare_exchange_strong(state, state | kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  // Throws std::logic_error("sync: unlock of unlocked mutex").
  void unlock() {
    std::uint64_t expected = kLocked;
    if (!state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                        std::memory_order_relaxed)) {
      unlock_slow(expected);
    }
  }

 private:
  void lock_slow();
  void unlock_slow(std::uint64_t state);
  static constexpr std::uint64_t kLocked = 1;
  static constexpr std::uint64_t kWaiters = 2;  // goroutines may be parked on this mutex
  static constexpr std::uint64_t kHandOff = 4;  // handed to a parked waiter that has not run
  std::atomic<std::uint64_t> state_{0};
};

// Writers are not starved by a stream of readers: once a writer waits, new readers queue.
class RWMutex {
 public:
  RWMutex() = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  void lock();  // throws std::logic_error outside goro::run
  bool try_lock();
  void unlock();       // throws std::logic_error("sync: Unlock of unlocked RWMutex")
  void lock_shared();  // throws std::logic_error outside goro::run
  bool try_lock_shared();
  void unlock_shared();  // throws std::logic_error("sync: RUnlock of unlocked RWMutex")

 private:
  // kWriter | kWritersWaiting | kReadersWaiting | active readers << kReaderShift.
  std::atomic<std::uint64_t> state_{0};
};

class Once {
 public:
  // Runs f once; if f throws, the exception propagates and the Once stays un-done.
  // Throws std::logic_error outside goro::run (it may park).
  template <class F>
  void call(F&& f) {
    detail::require_goroutine("sync.Once.Do");
    if (done_.load(std::memory_order_acquire)) return;
    mu_.lock();
    detail::ScopeExit unlock([this] { mu_.unlock(); });
    if (!done_.load(std::memory_order_relaxed)) {
      std::forward<F>(f)();
      done_.store(true, std::memory_order_release);
    }
  }

 private:
  std::atomic<bool> done_{false};
  Mutex mu_;
};

class Cond {
 public:
  explicit Cond(Mutex& m) : m_(m) {}
  Cond(const Cond&) = delete;
  Cond& operator=(const Cond&) = delete;

  // Unlocks the mutex, waits for signal/broadcast, locks it again. The mutex must be held:
  // otherwise throws std::logic_error("sync: unlock of unlocked mutex") and the Cond is
  // left as it was.
  void wait();
  void signal();  // wakes the longest waiter
  void broadcast();

 private:
  Mutex& m_;  // the waiters are in the runtime's wait table, keyed by this Cond's address
};

}  // namespace goro
