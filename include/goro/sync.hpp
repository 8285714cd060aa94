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

  // Throws std::logic_error("sync: negative WaitGroup counter") below zero.
  void add(int delta = 1);
  void done() { add(-1); }
  void wait();
  // add(1), then go(f then done()).
  template <class F>
  [[gnu::noinline]] void go(F&& f) {
    add(1);
    try {
      detail::spawn(__builtin_return_address(0),
                    [wg = this, fn = std::decay_t<F>(std::forward<F>(f))]() mutable {
                      struct Done {
                        WaitGroup* wg;
                        ~Done() { wg->done(); }
                      } done{wg};
                      fn();
                    });
    } catch (...) {
      add(-1);
      throw;
    }
  }

 private:
  // counter in the high 32 bits, parked waiters in the low 32 (as Go's state word).
  std::atomic<std::uint64_t> state_{0};
  detail::Lock mu_;
  detail::WaitQueue waiters_ GORO_GUARDED_BY(mu_);
};

class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() {
    std::uint32_t expected = 0;
    if (!state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
      lock_slow();
    }
  }
  bool try_lock();
  // Throws std::logic_error("sync: unlock of unlocked mutex").
  void unlock() {
    std::uint32_t expected = kLocked;
    if (!state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                        std::memory_order_relaxed)) {
      unlock_slow(expected);
    }
  }

 private:
  void lock_slow();
  void unlock_slow(std::uint32_t state);
  static constexpr std::uint32_t kLocked = 1;
  static constexpr std::uint32_t kWaiters = 2;  // waiters_ is not empty
  std::atomic<std::uint32_t> state_{0};
  detail::Lock mu_;
  detail::WaitQueue waiters_ GORO_GUARDED_BY(mu_);
  bool starving_ GORO_GUARDED_BY(mu_) = false;
};

// Writers are not starved by a stream of readers: once a writer waits, new readers queue.
class RWMutex {
 public:
  RWMutex() = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  void lock();
  bool try_lock();
  void unlock();  // throws std::logic_error("sync: Unlock of unlocked RWMutex")
  void lock_shared();
  bool try_lock_shared();
  void unlock_shared();  // throws std::logic_error("sync: RUnlock of unlocked RWMutex")

 private:
  detail::Lock mu_;
  int readers_ GORO_GUARDED_BY(mu_) = 0;  // active readers
  bool writer_ GORO_GUARDED_BY(mu_) = false;
  detail::WaitQueue waiting_readers_ GORO_GUARDED_BY(mu_);
  detail::WaitQueue waiting_writers_ GORO_GUARDED_BY(mu_);
};

class Once {
 public:
  // Runs f once; if f throws, the exception propagates and the Once stays un-done.
  template <class F>
  void call(F&& f) {
    if (done_.load(std::memory_order_acquire)) return;
    mu_.lock();
    struct Unlock {
      Mutex& m;
      ~Unlock() { m.unlock(); }
    } unlock{mu_};
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

  // Unlocks the mutex, waits for signal/broadcast, locks it again.
  void wait();
  void signal();  // wakes the longest waiter
  void broadcast();

 private:
  Mutex& m_;
  detail::Lock mu_;
  detail::WaitQueue waiters_ GORO_GUARDED_BY(mu_);
};

}  // namespace goro
