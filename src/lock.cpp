// goro: the slow paths of detail::Lock (a futex mutex, Drepper's "mutex 2"): spin a little,
// then mark the lock contended (2) and sleep in the kernel until an unlock wakes us.
#include "goro/detail/lock.hpp"

#include <cstdio>
#include <cstdlib>

#include "platform.hpp"

namespace goro::detail {

void Lock::lock_slow() {
  // Test-and-test-and-set with exponential backoff.
  Backoff backoff;
  for (int spin = 0; spin < 12; ++spin) {
    backoff.pause();
    std::uint32_t expected = 0;
    if (state_.load(std::memory_order_relaxed) == 0 &&
        state_.compare_exchange_weak(expected, 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
  while (state_.exchange(2, std::memory_order_acquire) != 0) futex_wait(&state_, 2, nullptr);
}

void Lock::wake_one() { futex_wake(&state_, 1); }

// ---- lock ranks (checked when built with GORO_LOCK_RANK_CHECKS) ----

namespace {

struct Held {
  const Lock* lock;
  LockRank rank;
};
constexpr int kMaxHeld = 64;  // a select over many channels holds one lock per channel
thread_local Held tl_held[kMaxHeld];
thread_local int tl_nheld = 0;

const char* rank_name(LockRank r) {
  switch (r) {
    case LockRank::none:
      return "unranked";
    case LockRank::channel:
      return "channel";
    case LockRank::wait_table:
      return "wait-table bucket";
    case LockRank::context:
      return "context";
    case LockRank::poll_fds:
      return "poll_fds";
    case LockRank::poll_desc:
      return "poll_desc";
    case LockRank::procs:
      return "procs";
    case LockRank::sched:
      return "scheduler";
    case LockRank::stack_pool:
      return "stack pool";
    case LockRank::timer_pending:
      return "pending timer heap";
    case LockRank::timer_heap:
      return "timer heap";
    case LockRank::leaf:
      return "leaf";
  }
  return "?";
}

[[noreturn]] void rank_violation(const Lock* want, const Lock* held) {
  std::fprintf(stderr,
               "fatal error: goro lock order violation: acquiring %s lock %p while holding %s "
               "lock %p\n",
               rank_name(want->rank()), static_cast<const void*>(want), rank_name(held->rank()),
               static_cast<const void*>(held));
  std::abort();
}

}  // namespace

void Lock::rank_acquire(const Lock* l) noexcept {
  const LockRank r = l->rank();
  if (r != LockRank::none) {
    for (int i = 0; i < tl_nheld; ++i) {
      const Held& h = tl_held[i];
      if (h.rank == LockRank::none) continue;
      const bool in_order = h.rank < r || (h.rank == r && r == LockRank::channel && h.lock < l);
      if (!in_order) rank_violation(l, h.lock);
    }
  }
  if (tl_nheld < kMaxHeld) tl_held[tl_nheld++] = Held{l, r};
}

void Lock::rank_release(const Lock* l) noexcept {
  for (int i = tl_nheld; i-- > 0;) {
    if (tl_held[i].lock == l) {
      tl_held[i] = tl_held[--tl_nheld];
      return;
    }
  }
}

}  // namespace goro::detail
