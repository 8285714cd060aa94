// Fatal conditions: panics and global deadlocks, raised as exceptions (OnFatal::raise) or
// reported on stderr with exit status 2 (OnFatal::exit, checked in a child process), and
// goroutine stack overflow.
//
// Objects that blocked goroutines use are owned by the test's own frame, so that nothing
// the abandoned goroutines hold is leaked (LeakSanitizer runs on this binary under ASan).
#include <gtest/gtest.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::ChildResult;
using goro_test::describe;
using goro_test::exited_with;
using goro_test::run_in_child;

namespace {

constexpr const char* kDeadlockLine = "fatal error: all goroutines are asleep - deadlock!";

const goro::Options kRaise{.procs = 2, .on_fatal = goro::OnFatal::raise};

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Runs f under OnFatal::raise and returns the Deadlock's what(), or a note when no
// Deadlock was thrown.
template <class F>
std::string deadlock_text(F&& f, goro::Options opts = kRaise) {
  try {
    goro::run(std::forward<F>(f), opts);
  } catch (const goro::Deadlock& d) {
    return d.what();
  } catch (const std::exception& e) {
    return std::string("<other exception: ") + e.what() + ">";
  }
  return "<run returned>";
}

// ---------------------------------------------------------------- raise: panics

TEST(Panic, FromGoroutineRaisesWithNestedException) {
  goro::Chan<int> never(nullptr);
  try {
    goro::run(
        [&] {
          never = goro::Chan<int>();
          goro::go([] { throw std::runtime_error("boom"); });
          never.recv();
        },
        kRaise);
    FAIL() << "run returned";
  } catch (const goro::Panic& p) {
    const std::string what = p.what();
    EXPECT_TRUE(starts_with(what, "panic: boom")) << what;
    try {
      std::rethrow_if_nested(p);
      ADD_FAILURE() << "nothing nested";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "boom");
    } catch (...) {
      ADD_FAILURE() << "wrong nested exception type";
    }
  }
}

TEST(Panic, FromMainRaises) {
  try {
    goro::run([]() -> int { throw std::logic_error("main threw"); }, kRaise);
    FAIL() << "run returned";
  } catch (const goro::Panic& p) {
    EXPECT_TRUE(starts_with(p.what(), "panic: main threw")) << p.what();
    EXPECT_THROW(std::rethrow_if_nested(p), std::logic_error);
  }
}

TEST(Panic, NonStdExceptionIsNestedAsIs) {
  goro::Chan<int> never(nullptr);
  try {
    goro::run(
        [&] {
          never = goro::Chan<int>();
          goro::go([] { throw 42; });
          never.recv();
        },
        kRaise);
    FAIL() << "run returned";
  } catch (const goro::Panic& p) {
    EXPECT_TRUE(starts_with(p.what(), "panic: ")) << p.what();
    try {
      std::rethrow_if_nested(p);
      ADD_FAILURE() << "nothing nested";
    } catch (int v) {
      EXPECT_EQ(v, 42);
    } catch (...) {
      ADD_FAILURE() << "wrong nested exception type";
    }
  }
}

TEST(Panic, UncaughtClosedChannel) {
  goro::Chan<int> ch(nullptr);
  try {
    goro::run(
        [&] {
          ch = goro::Chan<int>();
          ch.close();
          ch.send(1);
        },
        kRaise);
    FAIL() << "run returned";
  } catch (const goro::Panic& p) {
    EXPECT_TRUE(starts_with(p.what(), "panic: send on closed channel")) << p.what();
    EXPECT_THROW(std::rethrow_if_nested(p), goro::ClosedChannel);
  }
}

TEST(Panic, StopsEveryGoroutine) {
  std::atomic<long> spins{0};
  EXPECT_THROW(goro::run(
                   [&] {
                     for (int i = 0; i < 4; ++i) {
                       goro::go([&] {
                         for (;;) {
                           spins.fetch_add(1, std::memory_order_relaxed);
                           goro::yield();
                         }
                       });
                     }
                     goro::go([&] {
                       while (spins.load() < 100) goro::yield();
                       throw std::runtime_error("stop all");
                     });
                     for (;;) goro::yield();
                   },
                   kRaise),
               goro::Panic);
  // run has returned: nothing of that run executes any more.
  const long after_run = spins.load();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(spins.load(), after_run);
}

TEST(Panic, RunWorksAgainAfterPanic) {
  EXPECT_THROW(goro::run([] { throw std::runtime_error("x"); }, kRaise), goro::Panic);
  EXPECT_EQ(goro::run([] { return 3; }, kRaise), 3);
}

// ---------------------------------------------------------------- raise: deadlocks

TEST(Deadlock, MainReceivesOnChannelNobodySendsTo) {
  goro::Chan<int> ch(nullptr);
  const std::string what = deadlock_text([&] {
    ch = goro::Chan<int>();
    ch.recv();
  });
  EXPECT_TRUE(starts_with(what, kDeadlockLine)) << what;
}

TEST(Deadlock, MainReceivesOnNilChannel) {
  const std::string what = deadlock_text([] { goro::Chan<int>(nullptr).recv(); });
  EXPECT_TRUE(starts_with(what, kDeadlockLine)) << what;
}

TEST(Deadlock, MainSendsOnNilChannel) {
  const std::string what = deadlock_text([] { goro::Chan<int>(nullptr).send(1); });
  EXPECT_TRUE(starts_with(what, kDeadlockLine)) << what;
}

TEST(Deadlock, EmptySelect) {
  const std::string what = deadlock_text([] { goro::select(); });
  EXPECT_TRUE(starts_with(what, kDeadlockLine)) << what;
}

TEST(Deadlock, SelectOverNilChannelsOnly) {
  const std::string what = deadlock_text([] {
    goro::Chan<int> nil(nullptr);
    goro::select(goro::on_recv(nil), goro::on_send(nil, 1));
  });
  EXPECT_TRUE(starts_with(what, kDeadlockLine)) << what;
}

TEST(Deadlock, EveryGoroutineBlocked) {
  goro::Mutex mu;
  goro::WaitGroup wg;
  goro::Chan<int> ch(nullptr);
  const std::string what = deadlock_text(
      [&] {
        ch = goro::Chan<int>();
        mu.lock();
        wg.add(3);
        goro::go([&] { mu.lock(); });  // never unlocked
        goro::go([&] { ch.recv(); });  // nobody sends
        goro::go([&] { ch.recv(); });
        wg.wait();  // nobody calls done
      },
      {.procs = 1, .on_fatal = goro::OnFatal::raise});
  EXPECT_TRUE(starts_with(what, kDeadlockLine)) << what;
}

TEST(Deadlock, OneProcWorksToo) {
  goro::Chan<int> ch(nullptr);
  const std::string what = deadlock_text(
      [&] {
        ch = goro::Chan<int>();
        ch.send(1);
      },
      {.procs = 1, .on_fatal = goro::OnFatal::raise});
  EXPECT_TRUE(starts_with(what, kDeadlockLine)) << what;
}

TEST(Deadlock, RunWorksAgainAfterDeadlock) {
  EXPECT_THROW(goro::run([] { goro::select(); }, kRaise), goro::Deadlock);
  EXPECT_EQ(goro::run([] { return 4; }, kRaise), 4);
}

TEST(Deadlock, SleepingGoroutineIsNotADeadlock) {
  // Main is blocked and nothing is runnable, but a goroutine sleeps on a timer.
  goro::Chan<int> ch(nullptr);
  int v = 0;
  EXPECT_NO_THROW(v = goro::run(
                      [&] {
                        ch = goro::Chan<int>(1);
                        goro::go([c = ch]() mutable {
                          goro::sleep(50ms);
                          c.send(7);
                        });
                        return *ch.recv();
                      },
                      kRaise));
  EXPECT_EQ(v, 7);
}

TEST(Deadlock, WaitingOnATimerIsNotADeadlock) {
  goro::Chan<int> never(nullptr);
  std::size_t i = 99;
  EXPECT_NO_THROW(i = goro::run(
                      [&] {
                        never = goro::Chan<int>();
                        return goro::select(goro::on_recv(never), goro::on_recv(goro::after(30ms)));
                      },
                      kRaise));
  EXPECT_EQ(i, 1u);
  EXPECT_NO_THROW(goro::run([] { goro::sleep(20ms); }, kRaise));
}

// ---------------------------------------------------------------- exit: child processes

TEST(FatalExit, DeadlockPrintsAndExitsTwo) {
  const ChildResult r = run_in_child([] {
    goro::run([] {
      goro::Chan<int> ch;
      ch.recv();
    });
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_NE(r.err.find(std::string(kDeadlockLine) + "\n\ngoroutine "), std::string::npos)
      << describe(r);
  EXPECT_NE(r.err.find("goroutine 1 [chan receive"), std::string::npos) << describe(r);
}

TEST(FatalExit, DeadlockDumpShowsWaitReasons) {
  const ChildResult r = run_in_child([] {
    goro::run(
        [] {
          goro::Mutex mu;
          goro::WaitGroup wg;
          mu.lock();
          wg.add(1);
          goro::go([&] { mu.lock(); });
          wg.wait();
        },
        {.procs = 2});
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_NE(r.err.find(kDeadlockLine), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("goroutine 1 [sync.WaitGroup.Wait"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("[sync.Mutex.Lock"), std::string::npos) << describe(r);
}

TEST(FatalExit, EmptySelectDeadlock) {
  const ChildResult r = run_in_child([] { goro::run([] { goro::select(); }); });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_NE(r.err.find(kDeadlockLine), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("goroutine 1 [select (no cases)"), std::string::npos) << describe(r);
}

TEST(FatalExit, PanicPrintsAndExitsTwo) {
  const ChildResult r = run_in_child([] {
    goro::run([] {
      goro::go([] { throw std::runtime_error("it broke"); });
      goro::Chan<int> ch;
      ch.recv();
    });
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_NE(r.err.find("panic: it broke"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("panic: it broke\n\ngoroutine "), std::string::npos) << describe(r);
  EXPECT_EQ(r.err.find(kDeadlockLine), std::string::npos) << describe(r);
}

TEST(FatalExit, PanicInMainExitsTwo) {
  const ChildResult r = run_in_child([] {
    goro::run([] {
      goro::Chan<int> ch(1);
      ch.close();
      ch.send(1);
    });
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_NE(r.err.find("panic: send on closed channel"), std::string::npos) << describe(r);
}

TEST(FatalExit, NormalReturnIsNotFatal) {
  const ChildResult r = run_in_child([] {
    const int v = goro::run([] {
      goro::Chan<int> ch(1);
      goro::go([ch]() mutable { ch.send(5); });
      return *ch.recv();
    });
    if (v != 5) ::_exit(4);
  });
  EXPECT_TRUE(exited_with(r, 0)) << describe(r);
  EXPECT_EQ(r.err, "");
}

// Each frame holds a big volatile array, written from its top down so that a frame never
// skips over the guard page below the stack. Recurses `limit` times (volatile: the compiler
// cannot see the end).
[[gnu::noinline]] int recurse(int depth, const volatile int& limit) {
  volatile char frame[2048];
  for (int i = static_cast<int>(sizeof frame) - 1; i >= 0; i -= 64) {
    frame[i] = static_cast<char>(depth);
  }
  frame[0] = static_cast<char>(depth);
  if (depth < limit) return recurse(depth + 1, limit) + frame[depth % sizeof frame];
  return frame[0];
}

TEST(FatalExit, StackSizeOptionAllowsDeepRecursion) {
  // About 2 MiB of stack: far beyond a default goroutine stack, well within 16 MiB.
  const ChildResult r = run_in_child([] {
    goro::run(
        [] {
          static const volatile int limit = 1000;
          goro::Chan<int> result(1);
          goro::go([result]() mutable { result.send(recurse(0, limit)); });
          result.recv();
        },
        {.procs = 2, .stack_size = std::size_t{16} << 20});
  });
  EXPECT_TRUE(exited_with(r, 0)) << describe(r);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GORO_TEST_SKIP_OVERFLOW 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GORO_TEST_SKIP_OVERFLOW 1
#endif
#endif

#ifndef GORO_TEST_SKIP_OVERFLOW
TEST(FatalExit, StackOverflowInGoroutine) {
  const ChildResult r = run_in_child([] {
    goro::run([] {
      static const volatile int unbounded = 1 << 30;
      goro::Chan<int> result;
      goro::go([result]() mutable { result.send(recurse(0, unbounded)); });
      result.recv();
    });
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_NE(r.err.find("fatal error: stack overflow in goroutine"), std::string::npos)
      << describe(r);
}
#endif

}  // namespace
