// Conformance regressions: each test reproduces a defect found by running Go's own tests
// and hostile programs against goro's contract, and fails on the code before its fix
// (several only under the sanitizer that sees the use-after-free or the race).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "goro/goro.hpp"
#include "goro/testing.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::scaled;

namespace {

const goro::Options kRaise{.procs = 2, .on_fatal = goro::OnFatal::raise};

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// Waits (yielding) until goroutine `id` is parked with wait reason `state`.
bool parked_in(std::uint64_t id, const std::string& state) {
  return goro_test::eventually([&] {
    for (const goro::GoroutineInfo& g : goro::goroutines()) {
      if (g.id == id) return g.state == state;
    }
    return false;
  });
}

// ---- select with a default decides "nothing ready" atomically (Go's TestNonblockSelectRace)

TEST(Conformance, SelectDefaultNeverWinsOverACaseReadyThroughout) {
  constexpr int rounds = scaled(20000);
  int defaults = goro::run(
      [] {
        int defaults = 0;
        goro::Chan<bool> done(1);
        for (int i = 0; i < rounds; ++i) {
          goro::Chan<int> c1(1), c2(1);
          c1.send(1);
          goro::go([=]() mutable {
            std::size_t which =
                goro::select(goro::on_recv(c1), goro::on_recv(c2), goro::on_default());
            done.send(which != 2);
          });
          c2.send(1);  // from here on at least one of c1, c2 holds a value...
          goro::select(goro::on_recv(c1), goro::on_default());  // ...even after this drain
          if (!*done.recv()) ++defaults;
        }
        return defaults;
      },
      {.procs = 2});
  EXPECT_EQ(defaults, 0);
}

// ---- foreign threads: ForeignThread keeps the detector quiet; without one it is exact

TEST(Conformance, ForeignProducerWithRegistrationIsNotADeadlock) {
  int got = goro::run(
      [] {
        goro::Chan<int> ch(1);
        std::atomic<bool> main_waits{false};
        std::thread producer([ch, &main_waits, reg = goro::ForeignThread()]() mutable {
          while (!main_waits.load()) std::this_thread::yield();
          // A gap during which every goroutine is blocked: only this thread can wake main.
          std::this_thread::sleep_for(30ms);
          ch.try_send(7);
        });
        main_waits.store(true);
        int v = *ch.recv();
        producer.join();
        return v;
      },
      kRaise);
  EXPECT_EQ(got, 7);
}

TEST(Conformance, DeadlockIsReportedOnceTheLastForeignThreadIsGone) {
  std::thread producer;
  goro::Chan<int> ch(nullptr);
  bool deadlock = false;
  try {
    goro::run(
        [&] {
          ch = goro::Chan<int>(1);
          producer = std::thread([ch, reg = goro::ForeignThread()]() mutable { ch.try_send(1); });
          ch.recv();
          ch.recv();  // nobody else will ever send: a deadlock once `reg` is gone
        },
        kRaise);
  } catch (const goro::Deadlock& d) {
    deadlock =
        std::string(d.what()).rfind("fatal error: all goroutines are asleep - deadlock!", 0) == 0;
  }
  producer.join();
  EXPECT_TRUE(deadlock);
}

TEST(Conformance, ForeignThreadOutsideRunThrowsAndOutlivingItsRunIsHarmless) {
  EXPECT_THROW(goro::ForeignThread(), std::logic_error);
  std::optional<goro::ForeignThread> kept;
  goro::run([&] { kept.emplace(); }, {.procs = 1});
  goro::ForeignThread moved(std::move(*kept));  // destroyed after its run: does nothing
  kept.reset();
  int v = goro::run([] { return 5; }, {.procs = 1});  // and does not disturb the next run
  EXPECT_EQ(v, 5);
}

// A foreign thread handing values to a goroutine parked in recv while run() tears down: the
// hand-off writes into the parked goroutine's stack, which teardown must not unmap first.
TEST(Conformance, ForeignTrySendRacingWithTheEndOfRun) {
  for (int round = 0; round < scaled(40); ++round) {
    goro::Chan<int> ch(nullptr);
    std::thread feeder;
    std::atomic<bool> stop{false};
    goro::run(
        [&] {
          ch = goro::Chan<int>();
          goro::go([&ch] {
            for (;;) ch.recv();  // abandoned, parked, when main returns (by reference: the
          });                    // abandoned goroutine owns nothing that would leak)
          feeder = std::thread([c = ch, &stop]() mutable {
            while (!stop.load()) c.try_send(1);
          });
          for (int i = 0; i < 50; ++i) goro::yield();
        },
        {.procs = 2});
    for (int i = 0; i < 2000; ++i) ch.try_send(2);  // after run: nothing is woken, no crash
    stop.store(true);
    feeder.join();
  }
  SUCCEED();
}

// ---- WaitGroup: freed as soon as wait() returns (a second waiter on the fast path)

TEST(Conformance, WaitGroupFreedRightAfterWaitReturns) {
  constexpr int rounds = scaled(3000);
  int completed = goro::run(
      [] {
        int completed = 0;
        for (int i = 0; i < rounds; ++i) {
          auto* wg = new goro::WaitGroup;
          wg->add(1);
          goro::Chan<int> first_done(1);
          goro::Chan<std::uint64_t> first_id(1);
          goro::go([wg, first_done, first_id]() mutable {
            first_id.send(goro::goroutine_id());
            wg->wait();  // the first waiter: parks
            first_done.send(1);
          });
          if (!parked_in(*first_id.recv(), "sync.WaitGroup.Wait")) return -1;
          goro::go([wg] { wg->done(); });
          wg->wait();  // often the fast path, while done() is still waking the first waiter
          delete wg;
          completed += *first_done.recv();
        }
        return completed;
      },
      {.procs = 4});
  EXPECT_EQ(completed, rounds);
}

TEST(Conformance, MutexFreedByTheGoroutineThatLockedItLast) {
  constexpr int rounds = scaled(3000);
  int completed = goro::run(
      [] {
        int completed = 0;
        for (int i = 0; i < rounds; ++i) {
          auto* mu = new goro::Mutex;
          mu->lock();
          goro::Chan<int> unlocked(1);
          goro::go([mu, unlocked]() mutable {
            mu->unlock();  // may still be inside unlock when main frees *mu
            unlocked.send(1);
          });
          goro::go([] {});
          mu->lock();  // parks until the unlock, or spins and wins
          mu->unlock();
          delete mu;
          completed += *unlocked.recv();
        }
        return completed;
      },
      {.procs = 4});
  EXPECT_EQ(completed, rounds);
}

// ---- sync objects whose waiters were abandoned by an earlier run

goro::Mutex g_mu;
goro::Cond g_cond(g_mu);
goro::WaitGroup g_wg;
goro::RWMutex g_rw;

TEST(Conformance, SyncObjectsOutliveWaitersAbandonedByTheirRun) {
  goro::Chan<int> started(nullptr);  // owned here: the abandoned goroutines hold no handle
  goro::run(
      [&] {
        g_wg.add(1);
        g_rw.lock();
        started = goro::Chan<int>(4);
        goro::go([&started] {
          std::lock_guard lock(g_mu);
          started.send(1);
          g_cond.wait();  // abandoned in the wait table
        });
        goro::go([&started] {
          started.send(1);
          g_wg.wait();
        });
        goro::go([&started] {
          started.send(1);
          g_rw.lock_shared();
        });
        for (int i = 0; i < 3; ++i) started.recv();
        for (int i = 0; i < 20; ++i) goro::yield();
      },
      {.procs = 1});
  bool ok = goro::run(
      [] {
        g_cond.broadcast();  // crashed: the abandoned waiter's stack was gone
        g_cond.signal();
        g_wg.done();
        g_rw.unlock();
        { std::shared_lock read(g_rw); }
        // Everything still works in the new run.
        goro::WaitGroup wg;
        bool woken = false;
        wg.go([&] {
          std::unique_lock lock(g_mu);
          while (!woken) g_cond.wait();
        });
        goro::go([&] {
          std::lock_guard lock(g_mu);
          woken = true;
          g_cond.broadcast();
        });
        wg.wait();
        g_wg.add(1);
        goro::go([] { g_wg.done(); });
        g_wg.wait();
        return woken;
      },
      {.procs = 2});
  EXPECT_TRUE(ok);
}

// ---- range-for holds the channel it ranges over

TEST(Conformance, RangeForSurvivesReassigningItsChannel) {
  int sum = goro::run([] {
    goro::Chan<int> ch(3);
    ch.send(1);
    ch.send(2);
    ch.close();
    int sum = 0;
    for (int v : ch) {
      sum += v;
      ch = goro::Chan<int>(1);  // the loop keeps receiving from the channel it started on
    }
    return sum;
  });
  EXPECT_EQ(sum, 3);
}

// ---- channel elements must have a noexcept move (checked at compile time)

struct ThrowingMove {
  ThrowingMove() = default;
  ThrowingMove(ThrowingMove&&) noexcept(false) {}
};
static_assert(!std::is_nothrow_move_constructible_v<ThrowingMove>);
// tests/compile_fail/chan_throwing_move.cpp checks that Chan<ThrowingMove> fails to compile
// with a clear message (a ctest case that runs the compiler).

// ---- WaitGroup::go with an extra done(): Go's panic, not std::terminate

TEST(Conformance, ExtraDoneInsideWaitGroupGoIsAPanic) {
  std::string what;
  try {
    goro::run(
        [] {
          goro::WaitGroup wg;
          wg.go([&] { wg.done(); });
          wg.wait();
          goro::select();  // the wrapper's done() panics before this could deadlock
        },
        kRaise);
  } catch (const goro::Panic& p) {
    what = p.what();
  }
  EXPECT_EQ(what.rfind("panic: sync: negative WaitGroup counter", 0), 0u) << what;
}

TEST(Conformance, ExtraDoneInsideWaitGroupGoExitsWithStatus2) {
  auto r = goro_test::run_in_child([] {
    goro::run(
        [] {
          goro::WaitGroup wg;
          wg.go([&] { wg.done(); });
          wg.wait();
          goro::select();
        },
        {.procs = 2});
  });
  EXPECT_TRUE(goro_test::exited_with(r, 2)) << goro_test::describe(r);
  EXPECT_EQ(r.err.rfind("panic: sync: negative WaitGroup counter\n", 0), 0u)
      << goro_test::describe(r);
}

// ---- Cond::wait without the mutex leaves the Cond intact

TEST(Conformance, CondWaitWithoutTheMutexThrowsAndLeavesTheCondIntact) {
  bool ok = goro::run(
      [] {
        goro::Mutex mu;
        goro::Cond cond(mu);
        EXPECT_THROW(cond.wait(), std::logic_error);
        cond.broadcast();  // crashed: the throwing waiter stayed queued
        cond.signal();
        bool ready = false;
        goro::WaitGroup wg;
        wg.go([&] {
          std::unique_lock lock(mu);
          while (!ready) cond.wait();
        });
        goro::go([&] {
          std::lock_guard lock(mu);
          ready = true;
          cond.signal();
        });
        wg.wait();
        return ready;
      },
      {.procs = 2});
  EXPECT_TRUE(ok);
}

// ---- a second unlock after a starvation hand-off is misuse, and is reported

TEST(Conformance, SecondUnlockAfterAStarvationHandOffIsReported) {
  std::string second_unlock;
  bool try_lock_while_handed_off = true;
  goro::run(
      [&] {
        goro::Mutex mu;
        goro::Chan<std::uint64_t> started;
        goro::WaitGroup wg;
        mu.lock();
        wg.go([&] {
          started.send(goro::goroutine_id());
          mu.lock();  // parks; waits over 1 ms: the unlock hands the lock over
          mu.unlock();
        });
        const std::uint64_t waiter = *started.recv();
        ASSERT_TRUE(parked_in(waiter, "sync.Mutex.Lock"));
        const auto t0 = goro::Clock::now();
        while (goro::Clock::now() - t0 < 3ms) {
        }
        mu.unlock();  // hand-off: the lock belongs to the waiter, which has not run yet
        try {
          mu.unlock();
        } catch (const std::logic_error& e) {
          second_unlock = e.what();
        }
        try_lock_while_handed_off = mu.try_lock();
        if (try_lock_while_handed_off) mu.unlock();
        wg.wait();
      },
      {.procs = 1});
  EXPECT_EQ(second_unlock, "sync: unlock of unlocked mutex");
  EXPECT_FALSE(try_lock_while_handed_off);
}

// ---- foreign threads waking sync waiters, or taking snapshots, while run() ends

TEST(Conformance, ForeignSyncWakeUpsAndSnapshotsRacingTheEndOfRun) {
  for (int round = 0; round < scaled(30); ++round) {
    goro::WaitGroup wg;
    goro::Mutex mu;
    goro::Cond cond(mu);
    std::thread waker;
    std::thread monitor;
    std::atomic<bool> stop{false};
    goro::run(
        [&] {
          wg.add(1);
          for (int i = 0; i < 50; ++i) {
            goro::go([&] { wg.wait(); });  // abandoned or woken, by reference only
            goro::go([&] {
              std::unique_lock lock(mu);
              cond.wait();
            });
          }
          goro::yield();
          waker = std::thread([&, reg = goro::ForeignThread()] {
            cond.broadcast();
            wg.done();
          });
          monitor = std::thread([&] {
            while (!stop.load()) {
              std::ostringstream out;
              goro::dump(out);
              (void)goro::goroutines();
              (void)goro::num_goroutines();
            }
          });
        },
        {.procs = 2});
    waker.join();
    stop.store(true);
    monitor.join();
  }
  SUCCEED();
}

// ---- outside run, every call that may park throws, even when it would not block

TEST(Conformance, ParkingSyncCallsThrowOutsideRunEvenUncontended) {
  goro::Mutex mu;
  goro::RWMutex rw;
  goro::Once once;
  goro::WaitGroup wg;
  EXPECT_THROW(mu.lock(), std::logic_error);
  EXPECT_THROW(rw.lock(), std::logic_error);
  EXPECT_THROW(rw.lock_shared(), std::logic_error);
  EXPECT_THROW(once.call([] {}), std::logic_error);
  EXPECT_THROW(wg.wait(), std::logic_error);
  // Calls that never park still work (and left nothing locked above).
  EXPECT_TRUE(mu.try_lock());
  mu.unlock();
  EXPECT_TRUE(rw.try_lock_shared());
  rw.unlock_shared();
  EXPECT_TRUE(rw.try_lock());
  rw.unlock();
}

// ---- blocking() carries errno back

TEST(Conformance, BlockingCarriesErrnoBack) {
  int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto [rc, err] = goro::run([fd] {
    // No errno access before the call in this function: glibc's __errno_location is a
    // `const` function, so a compiler may reuse its address across the park, and the
    // goroutine may resume on another worker thread (docs/API.md, blocking()).
    ssize_t rc = goro::blocking([fd] { return ::write(fd, "x", 1); });
    return std::pair<ssize_t, int>(rc, errno);
  });
  ::close(fd);
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(err, ENOSPC);
}

// ---- blocking(): a call that waits for another one submitted right after it

TEST(Conformance, BlockingCallsSubmittedTogetherEachGetAHelper) {
  // Each run starts with an empty pool; after the first call exactly one helper is idle.
  // Two calls submitted back to back must not both be left to that one helper: the first
  // waits for the second.
  int ok = 0;
  for (int round = 0; round < scaled(40); ++round) {
    ok += goro::run(
        [] {
          goro::blocking([] {});
          for (int i = 0; i < 100; ++i) goro::yield();  // let the helper go idle
          std::promise<void> second_ran;
          std::future<void> fut = second_ran.get_future();
          goro::WaitGroup second;
          second.go([&second_ran] { goro::blocking([&second_ran] { second_ran.set_value(); }); });
          goro::Chan<bool> first_done(1);
          goro::go([&fut, first_done]() mutable {  // spawned last: runs (and submits) first
            first_done.send(
                goro::blocking([&fut] { return fut.wait_for(10s) == std::future_status::ready; }));
          });
          bool done = *first_done.recv();
          second.wait();
          return done ? 1 : 0;
        },
        {.procs = 1});
  }
  EXPECT_EQ(ok, scaled(40));
}

// ---- simultaneous panics: exactly one report

TEST(Conformance, SimultaneousPanicsAreReportedOnce) {
  for (int round = 0; round < scaled(20); ++round) {
    auto r = goro_test::run_in_child([] {
      goro::run(
          [] {
            std::atomic<int> ready{0};
            for (int i = 0; i < 4; ++i) {
              goro::go([&ready] {
                ready.fetch_add(1);
                while (ready.load() < 4) {
                }
                throw std::runtime_error("simultaneous");
              });
            }
            goro::select();
          },
          {.procs = 4});
    });
    ASSERT_TRUE(goro_test::exited_with(r, 2)) << goro_test::describe(r);
    EXPECT_EQ(count_of(r.err, "panic: "), 1u) << goro_test::describe(r);
    EXPECT_EQ(count_of(r.err, "goroutine 1 ["), 1u) << goro_test::describe(r);
  }
}

// ---- a deadlock right after a blocking() call returns is reported, never a hang

TEST(Conformance, DeadlockRightAfterBlockingReturnsIsReported) {
  for (int round = 0; round < scaled(100); ++round) {
    goro::Chan<int> never(nullptr);
    bool deadlock = false;
    try {
      goro::run(
          [&] {
            never = goro::Chan<int>();
            goro::blocking([] {});
            never.recv();
          },
          kRaise);
    } catch (const goro::Deadlock&) {
      deadlock = true;
    }
    ASSERT_TRUE(deadlock) << "round " << round;
  }
}

// ---- observability: goroutines() and verify_none()

TEST(Observability, GoroutinesSnapshotShowsStatesAndCreationSites) {
  goro::run(
      [] {
        goro::Chan<int> release;
        goro::Chan<std::uint64_t> id(1);
        goro::WaitGroup wg;
        wg.go([&] {
          id.send(goro::goroutine_id());
          release.recv();
        });
        const std::uint64_t parked = *id.recv();
        ASSERT_TRUE(parked_in(parked, "chan receive"));
        std::vector<goro::GoroutineInfo> all = goro::goroutines(true);
        ASSERT_GE(all.size(), 2u);
        EXPECT_EQ(all[0].id, 1u);
        EXPECT_EQ(all[0].state, "running");  // the caller
        auto it = std::find_if(all.begin(), all.end(),
                               [&](const goro::GoroutineInfo& g) { return g.id == parked; });
        ASSERT_NE(it, all.end());
        EXPECT_EQ(it->state, "chan receive");
        EXPECT_NE(it->created_at.find("test_conformance.cpp"), std::string::npos) << it->created_at;
        release.send(1);
        wg.wait();
      },
      {.procs = 2});
  EXPECT_TRUE(goro::goroutines().empty());  // outside run
}

TEST(Observability, VerifyNoneReportsLeakedGoroutinesAndWaitsForExitingOnes) {
  std::string leaked;
  goro::Chan<int> release(nullptr);
  goro::run(
      [&] {
        release = goro::Chan<int>();
        for (int i = 0; i < 8; ++i) goro::go([] {});  // exiting: verify_none waits for them
        goro::testing::verify_none();
        goro::go([&] { release.recv(); });
        try {
          goro::testing::verify_none(50ms);
        } catch (const goro::testing::LeakedGoroutines& e) {
          leaked = e.what();
        }
        release.send(1);
        goro::testing::verify_none();
      },
      {.procs = 2});
  EXPECT_EQ(leaked.rfind("found unexpected goroutines:\ngoroutine ", 0), 0u) << leaked;
  EXPECT_NE(leaked.find("[chan receive]"), std::string::npos) << leaked;
  EXPECT_THROW(goro::testing::verify_none(), std::logic_error);
}

}  // namespace
