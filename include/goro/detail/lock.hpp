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

// The documented lock order (outermost first), checked in debug builds of goro itself
// (GORO_LOCK_RANK_CHECKS, as Go's lockrank.go): a thread may only acquire a lock of a
// higher rank than every lock it holds, except that channel locks may be taken together in
// increasing address order (select). `none` is not checked.
enum class LockRank : std::uint8_t {
  none,
  channel,        // ChanCore::mu (select: several, in address order)
  wait_table,     // a SemaBucket::mu of the sync objects' wait table (one at a time)
  context,        // a Context's or an ErrGroup's state
  poll_fds,       // the poller's table of caller-owned fds (wait_readable/wait_writable)
  poll_desc,      // a PollDesc's deadlines and closing flag
  procs,          // Runtime::ps_mu (sysmon adding a spare worker)
  sched,          // Runtime::sched_mu (global run queue, idle list)
  stack_pool,     // StackPool::mu_
  timer_pending,  // the heap of timers armed while no run is active
  timer_heap,     // a run's timer heap (Runtime::timers)
  leaf,           // takes no other lock while held (fatal state)
};

class GORO_CAPABILITY("mutex") Lock {
 public:
  constexpr Lock() noexcept = default;
  explicit constexpr Lock(LockRank rank) noexcept : rank_(rank) {}
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  void lock() GORO_ACQUIRE() {
#if GORO_LOCK_RANK_CHECKS
    rank_acquire(this);
#endif
    std::uint32_t expected = 0;
    if (!state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
      lock_slow();
    }
  }
  bool try_lock() GORO_TRY_ACQUIRE(true) {
    std::uint32_t expected = 0;
    bool won = state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                              std::memory_order_relaxed);
#if GORO_LOCK_RANK_CHECKS
    if (won) rank_acquire(this);
#endif
    return won;
  }
  // Tells the analysis that the caller holds this lock where it cannot follow (a set of
  // channel locks taken in address order by select).
  void assert_held() const GORO_ASSERT_CAPABILITY(this) {}
  void unlock() GORO_RELEASE() {
#if GORO_LOCK_RANK_CHECKS
    rank_release(this);
#endif
    if (state_.exchange(0, std::memory_order_release) == 2) wake_one();
  }
  LockRank rank() const noexcept { return rank_; }

 private:
  void lock_slow();
  void wake_one();
  // Debug lock-rank bookkeeping (lock.cpp): aborts with both locks named on a violation.
  static void rank_acquire(const Lock* l) noexcept;
  static void rank_release(const Lock* l) noexcept;
  // 0 unlocked, 1 locked, 2 locked with sleepers.
  std::atomic<std::uint32_t> state_{0};
  LockRank rank_ = LockRank::none;
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
