// goro: the slow paths of detail::Lock (a futex mutex, Drepper's "mutex 2"): spin a little,
// then mark the lock contended (2) and sleep in the kernel until an unlock wakes us.
#include "goro/detail/lock.hpp"

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

}  // namespace goro::detail
