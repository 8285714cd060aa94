// Helpers shared by goro's tests: sanitizer detection and scaled iteration counts.
#pragma once

#include <chrono>

#include "goro/goro.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GORO_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GORO_TEST_SANITIZED 1
#endif
#endif
#ifndef GORO_TEST_SANITIZED
#define GORO_TEST_SANITIZED 0
#endif
#if defined(__SANITIZE_THREAD__)
#define GORO_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TEST_TSAN 1
#endif
#endif
#ifndef GORO_TEST_TSAN
#define GORO_TEST_TSAN 0
#endif

namespace goro_test {

inline constexpr bool kSanitized = GORO_TEST_SANITIZED != 0;
// TSan gives every goroutine (fiber) its own multi-MiB thread state: keep live counts low.
inline constexpr bool kThreadSanitizer = GORO_TEST_TSAN != 0;

// Big loops run a tenth as many rounds under the (5-15x slower) sanitizers.
constexpr int scaled(int n) { return kSanitized ? (n / 10 > 0 ? n / 10 : 1) : n; }

inline goro::Clock::duration since(goro::Clock::time_point start) {
  return goro::Clock::now() - start;
}

// Polls pred (yielding between tries) until it holds or `limit` passes; returns the last
// value. For observing progress that has no channel to wait on (e.g. parked goroutines).
template <class Pred>
bool eventually(Pred pred, goro::Clock::duration limit = std::chrono::seconds(10)) {
  const auto deadline = goro::Clock::now() + limit;
  while (!pred()) {
    if (goro::Clock::now() > deadline) return pred();
    goro::yield();
  }
  return true;
}

}  // namespace goro_test
