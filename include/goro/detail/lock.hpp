// goro internal: the short-critical-section lock used by channels, timers and sync objects.
//
//   goro::detail::Lock mu;
//   { goro::detail::LockGuard g(mu); ... }   // never held across a park by a goroutine:
//                                           // park() hands it to the scheduler to release.
//
// A futex-based mutex (spin briefly, then sleep in the kernel). It is the only OS-level lock
// goroutines ever take, and only for a handful of instructions, so a worker never sleeps
// while a goroutine waits on user-level state. Annotated for clang's -Wthread-safety.
#pragma once

#include <atomic>
#include <cstdint>

#if defined(__clang__)
#define GORO_TSA(x) __attribute__((x))
#else
#define GORO_TSA(x)
#endif
#define GORO_CAPABILITY(x) GORO_TSA(capability(x))
#define GORO_SCOPED_CAPABILITY GORO_TSA(scoped_lockable)
#define GORO_GUARDED_BY(x) GORO_TSA(guarded_by(x))
#define GORO_ACQUIRE(...) GORO_TSA(acquire_capability(__VA_ARGS__))
#define GORO_RELEASE(...) GORO_TSA(release_capability(__VA_ARGS__))
#define GORO_TRY_ACQUIRE(...) GORO_TSA(try_acquire_capability(__VA_ARGS__))
#define GORO_REQUIRES(...) GORO_TSA(requires_capability(__VA_ARGS__))
#define GORO_NO_TSA GORO_TSA(no_thread_safety_analysis)
#define GORO_ASSERT_CAPABILITY(x) GORO_TSA(assert_capability(x))

namespace goro::detail {

class GORO_CAPABILITY("mutex") Lock {
 public:
  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  void lock() GORO_ACQUIRE() {
    std::uint32_t expected = 0;
    if (!state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
      lock_slow();
    }
  }
  bool try_lock() GORO_TRY_ACQUIRE(true) {
    std::uint32_t expected = 0;
    return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  // Tells the analysis that the caller holds this lock where it cannot follow (a set of
  // channel locks taken in address order by select).
  void assert_held() const GORO_ASSERT_CAPABILITY(this) {}
  void unlock() GORO_RELEASE() {
    if (state_.exchange(0, std::memory_order_release) == 2) wake_one();
  }

 private:
  void lock_slow();
  void wake_one();
  // 0 unlocked, 1 locked, 2 locked with sleepers.
  std::atomic<std::uint32_t> state_{0};
};

class GORO_SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(Lock& mu) GORO_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~LockGuard() GORO_RELEASE() { mu_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock& mu_;
};

}  // namespace goro::detail
