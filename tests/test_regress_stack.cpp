// Regression tests for goroutine stacks (conformance issue item 8, item 14, and the TSan
// goroutine limit).
//
// Fatal outcomes run in a forked child whose stderr and exit status the parent checks.
#include <gtest/gtest.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

using goro_test::eventually;
using goro_test::kSanitized;
using goro_test::kThreadSanitizer;

using goro_test::ChildResult;
using goro_test::describe;
using goro_test::exited_with;
using goro_test::run_in_child;

// Recurses `limit` times with 2 KiB frames (volatile: the compiler cannot see the end).
[[maybe_unused]] [[gnu::noinline]] int recurse(int depth, const volatile int& limit) {
  volatile char frame[2048];
  for (int i = static_cast<int>(sizeof frame) - 1; i >= 0; i -= 64) {
    frame[i] = static_cast<char>(depth);
  }
  frame[0] = static_cast<char>(depth);
  if (depth < limit) return recurse(depth + 1, limit) + frame[depth % sizeof frame];
  return frame[0];
}

// Parks `n` goroutines on `gate`, then runs f in one more goroutine; returns once it returns.
template <class F>
void with_parked(int n, goro::Chan<int>& gate, F f) {
  for (int i = 0; i < n; ++i) goro::go([gate]() mutable { gate.recv(); });
  const std::size_t want = static_cast<std::size_t>(n) + 1;
  ASSERT_TRUE(eventually([&] { return goro::num_goroutines() >= want; }, 30s));
  goro::Chan<int> result(1);
  goro::go([result, f]() mutable { result.send(f()); });
  result.recv();
}

std::size_t mapping_count() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  std::string line;
  while (std::getline(maps, line)) ++n;
  return n;
}

std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

bool kernel_has_guards() { return std::strcmp(goro::stack_guard_scheme(), "madvise_guard") == 0; }

// ---------------------------------------------------------------- item 8: guards

TEST(RegressStack, SchemeIsQueryable) {
  const std::string scheme = goro::stack_guard_scheme();
  EXPECT_TRUE(scheme == "madvise_guard" || scheme == "mprotect") << scheme;
  RecordProperty("stack_guard_scheme", scheme);
  std::printf("stack guard scheme: %s\n", scheme.c_str());
}

#ifndef GORO_TEST_NO_OVERFLOW_HANDLER
#if GORO_TEST_SANITIZED
#define GORO_TEST_NO_OVERFLOW_HANDLER 1  // the sanitizers own SIGSEGV
#endif
#endif

#ifndef GORO_TEST_NO_OVERFLOW_HANDLER
TEST(RegressStack, OverflowBeyondThe16384thGoroutineIsReported) {
  if (!kernel_has_guards()) GTEST_SKIP() << "needs MADV_GUARD_INSTALL (Linux 6.13+)";
  const ChildResult r = run_in_child([] {
    goro::run(
        [] {
          goro::Chan<int> gate;
          static const volatile int unbounded = 1 << 30;
          with_parked(17000, gate, [] { return recurse(0, unbounded); });
        },
        {.procs = 2});
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_NE(r.err.find("fatal error: stack overflow in goroutine 17002\n"), std::string::npos)
      << describe(r);
}

TEST(RegressStack, MprotectFallbackStillGuardsTheFirstStacks) {
  const ChildResult r = run_in_child([] {
    ::setenv("GORO_STACK_GUARDS", "mprotect", 1);
    if (std::strcmp(goro::stack_guard_scheme(), "mprotect") != 0) ::_exit(4);
    goro::run(
        [] {
          static const volatile int unbounded = 1 << 30;
          goro::Chan<int> result;
          goro::go([result]() mutable { result.send(recurse(0, unbounded)); });
          result.recv();
        },
        {.procs = 2});
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_NE(r.err.find("fatal error: stack overflow in goroutine 2"), std::string::npos)
      << describe(r);
}
#endif

TEST(RegressStack, GuardsDoNotCostAMappingEach) {
  if (!kernel_has_guards()) GTEST_SKIP() << "needs MADV_GUARD_INSTALL (Linux 6.13+)";
  if (kThreadSanitizer) GTEST_SKIP() << "TSan maps memory for every goroutine's fiber";
  const int n = kSanitized ? 5000 : 20000;
  goro::run(
      [n] {
        const std::size_t before = mapping_count();
        goro::Chan<int> gate;
        goro::WaitGroup wg;
        for (int i = 0; i < n; ++i) {
          wg.go([gate]() mutable { gate.recv(); });
        }
        ASSERT_TRUE(eventually(
            [&] { return goro::num_goroutines() >= static_cast<std::size_t>(n) + 1; }, 30s));
        const std::size_t during = mapping_count();
        gate.close();
        wg.wait();
        // One mapping per 256 stacks (each with its guard), not one per stack.
        EXPECT_LT(during, before + static_cast<std::size_t>(n) / 100 + 50)
            << before << " mappings before, " << during << " with " << n << " goroutines";
      },
      {.procs = 2});
}

// ---------------------------------------------------------------- item 14: memory back

TEST(RegressStack, StackMemoryIsReturnedWhileRunLasts) {
  // The mprotect scheme keeps the canary page of every arena slot (past the first 16 384
  // stacks) resident: stay within the individually guarded stacks there.
  if (kThreadSanitizer) GTEST_SKIP() << "TSan's per-goroutine fiber state dominates RSS";
  const int n = kSanitized ? 15000 : kernel_has_guards() ? 100000 : 15000;
  goro::run(
      [n] {
        // Warm up: the pool and caches exist, the heap has grown for the runtime's needs.
        {
          goro::WaitGroup wg;
          for (int i = 0; i < 100; ++i) wg.go([] {});
          wg.wait();
        }
        const std::size_t baseline = rss_bytes();
        goro::Chan<int> gate;
        for (int i = 0; i < n; ++i) goro::go([gate]() mutable { gate.recv(); });
        ASSERT_TRUE(eventually(
            [&] { return goro::num_goroutines() >= static_cast<std::size_t>(n) + 1; }, 60s));
        const std::size_t peak = rss_bytes();
        gate.close();
        ASSERT_TRUE(eventually([] { return goro::num_goroutines() == 1; }, 60s))
            << goro::num_goroutines() << " goroutines left";
        const std::size_t after = rss_bytes();
        const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        std::printf("RSS with %d goroutines: baseline %zu KiB, parked %zu KiB, after %zu KiB\n", n,
                    baseline >> 10, peak >> 10, after >> 10);
        // Each parked goroutine touched at least its top page.
        EXPECT_GT(peak, baseline + static_cast<std::size_t>(n) * page / 2)
            << "baseline " << baseline << ", peak " << peak;
        // Back near the baseline: at most a bounded pool stays warm (plus slack).
        // Under ASan every warm pooled stack (up to 2 x 1024, plus the workers' caches) also
        // keeps the shadow that unpoisoning its 1 MiB wrote: 128 KiB each.
        const std::size_t slack =
            (std::size_t{48} << 20) + (kSanitized ? std::size_t{320} << 20 : 0);
        EXPECT_LT(after, baseline + slack)
            << "baseline " << baseline << ", peak " << peak << ", after " << after;
      },
      {.procs = 2});
}

// ---------------------------------------------------------------- TSan goroutine limit

#if GORO_TEST_TSAN
// The limit is 8128 (Go's); creating that many TSan fibers takes minutes here, so the test
// lowers it with GORO_TSAN_GOROUTINE_LIMIT (read when a run starts).
TEST(RegressStack, TsanGoroutineLimitIsReported) {
  const ChildResult r = run_in_child([] {
    ::setenv("GORO_TSAN_GOROUTINE_LIMIT", "64", 1);
    goro::run(
        [] {
          goro::Chan<int> gate;
          for (int i = 0; i < 100; ++i) goro::go([gate]() mutable { gate.recv(); });
          gate.close();
        },
        {.procs = 2});
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_NE(r.err.find("race: limit on 64 simultaneously alive goroutines is exceeded, dying\n"),
            std::string::npos)
      << describe(r);
}

TEST(RegressStack, TsanGoroutineLimitAllowsTheLimit) {
  const ChildResult r = run_in_child([] {
    ::setenv("GORO_TSAN_GOROUTINE_LIMIT", "64", 1);
    goro::run(
        [] {
          goro::Chan<int> gate;
          goro::WaitGroup wg;
          for (int i = 0; i < 63; ++i) wg.go([gate]() mutable { gate.recv(); });  // + main
          gate.close();
          wg.wait();
        },
        {.procs = 2});
  });
  EXPECT_TRUE(exited_with(r, 0)) << describe(r);
}
#endif

}  // namespace
