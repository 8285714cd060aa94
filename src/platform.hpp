// goro internal: the thin layer over Linux and the sanitizers (futex, clocks, random,
// sanitizer detection). Nothing here takes a lock.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define GORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define GORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TSAN 1
#endif
#endif
#ifndef GORO_ASAN
#define GORO_ASAN 0
#endif
#ifndef GORO_TSAN
#define GORO_TSAN 0
#endif

namespace goro::detail {

inline void futex_wait(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                       const timespec* relative_timeout) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAIT_PRIVATE, expected,
          relative_timeout, nullptr, 0);
}

inline void futex_wake(std::atomic<std::uint32_t>* addr, int count) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

inline std::int64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// A cheap clock (a few ns, tick-granular) for wait-since stamps shown in dumps.
inline std::int64_t coarse_now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline timespec to_timespec(std::int64_t ns) noexcept {
  if (ns < 0) ns = 0;
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Exponential backoff for spin loops: fewer attempts under contention mean less cache-line
// ping-pong between the cores (the holder finishes sooner).
class Backoff {
 public:
  void pause() noexcept {
    for (int i = 0; i < spins_; ++i) cpu_relax();
    if (spins_ < 128) spins_ *= 2;
  }

 private:
  int spins_ = 4;
};

// xorshift64*: per-worker, not thread-safe, good enough for shuffles and victim choice.
struct FastRand {
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  std::uint32_t next() noexcept {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return static_cast<std::uint32_t>((state * 0x2545F4914F6CDD1Dull) >> 32);
  }
  // Uniform in [0, n) (Lemire's multiply-shift; bias is negligible for small n).
  std::uint32_t below(std::uint32_t n) noexcept {
    return static_cast<std::uint32_t>((std::uint64_t{next()} * n) >> 32);
  }
};

}  // namespace goro::detail
