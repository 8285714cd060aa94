// sync: WaitGroup, Mutex, RWMutex, Once and Cond.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::eventually;
using goro_test::scaled;

namespace {

// ---------------------------------------------------------------- WaitGroup

TEST(WaitGroup, WaitsForAll) {
  constexpr int kN = 100;
  std::atomic<int> finished{0};
  goro::run(
      [&] {
        goro::WaitGroup wg;
        wg.add(kN);
        for (int i = 0; i < kN; ++i) {
          goro::go([&] {
            goro::yield();
            ++finished;
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(finished.load(), kN);
      },
      {.procs = 2});
}

TEST(WaitGroup, GoAddsAndCallsDone) {
  std::atomic<int> finished{0};
  goro::run(
      [&] {
        goro::WaitGroup wg;
        for (int i = 0; i < 50; ++i) wg.go([&] { ++finished; });
        wg.wait();
        EXPECT_EQ(finished.load(), 50);
        // The WaitGroup can be reused once wait() has returned.
        for (int i = 0; i < 10; ++i) wg.go([&] { ++finished; });
        wg.wait();
        EXPECT_EQ(finished.load(), 60);
      },
      {.procs = 2});
}

TEST(WaitGroup, ZeroCounterWaitReturnsAtOnce) {
  goro::run([] {
    goro::WaitGroup wg;
    wg.wait();
    wg.add(2);
    wg.done();
    wg.done();
    wg.wait();
    SUCCEED();
  });
}

TEST(WaitGroup, NegativeCounterThrows) {
  goro::run([] {
    goro::WaitGroup wg;
    try {
      wg.done();
      ADD_FAILURE() << "no exception";
    } catch (const std::logic_error& e) {
      EXPECT_STREQ(e.what(), "sync: negative WaitGroup counter");
    }
    goro::WaitGroup wg2;
    wg2.add(2);
    EXPECT_THROW(wg2.add(-3), std::logic_error);
  });
}

TEST(WaitGroup, SeveralWaitersAllWake) {
  goro::run(
      [] {
        goro::WaitGroup work;
        work.add(1);
        goro::WaitGroup waiters;
        std::atomic<int> woke{0};
        for (int i = 0; i < 5; ++i) {
          waiters.go([&] {
            work.wait();
            ++woke;
          });
        }
        for (int i = 0; i < 20; ++i) goro::yield();
        EXPECT_EQ(woke.load(), 0);
        work.done();
        waiters.wait();
        EXPECT_EQ(woke.load(), 5);
      },
      {.procs = 2});
}

TEST(WaitGroup, DestroyRightAfterWait) {
  // The goroutine that calls done() may still be inside done() when wait() returns; the
  // WaitGroup must be safe to destroy at that point (ASan catches a use after free).
  const int rounds = scaled(2000);
  goro::run(
      [] {
        for (int r = 0; r < rounds; ++r) {
          auto wg = std::make_unique<goro::WaitGroup>();
          for (int i = 0; i < 3; ++i) wg->go([] {});
          wg->wait();
          wg.reset();
        }
        SUCCEED();
      },
      {.procs = 2});
}

// ---------------------------------------------------------------- Mutex

TEST(Mutex, MutualExclusionUnderContention) {
  constexpr int kGoroutines = 50;
  const int per = scaled(2000);
  long long counter = 0;  // deliberately not atomic: the mutex protects it
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  goro::run(
      [&] {
        goro::Mutex mu;
        goro::WaitGroup wg;
        for (int g = 0; g < kGoroutines; ++g) {
          wg.go([&, g] {
            for (int i = 0; i < per; ++i) {
              mu.lock();
              if (inside.fetch_add(1) != 0) ++overlaps;
              ++counter;
              if ((i + g) % 64 == 0) goro::yield();  // hold it across a switch now and then
              inside.fetch_sub(1);
              mu.unlock();
            }
          });
        }
        wg.wait();
      },
      {.procs = 2});
  EXPECT_EQ(counter, static_cast<long long>(kGoroutines) * per);
  EXPECT_EQ(overlaps.load(), 0);
}

TEST(Mutex, TryLock) {
  goro::run(
      [] {
        goro::Mutex mu;
        EXPECT_TRUE(mu.try_lock());
        EXPECT_FALSE(mu.try_lock());
        goro::Chan<bool> from_other(1);
        goro::go([&mu, from_other]() mutable { from_other.send(mu.try_lock()); });
        EXPECT_EQ(from_other.recv(), false);
        mu.unlock();
        EXPECT_TRUE(mu.try_lock());
        mu.unlock();
      },
      {.procs = 2});
}

TEST(Mutex, UnlockOfUnlockedThrows) {
  goro::run([] {
    goro::Mutex mu;
    try {
      mu.unlock();
      ADD_FAILURE() << "no exception";
    } catch (const std::logic_error& e) {
      EXPECT_STREQ(e.what(), "sync: unlock of unlocked mutex");
    }
    mu.lock();
    mu.unlock();
    EXPECT_THROW(mu.unlock(), std::logic_error);
  });
}

TEST(Mutex, StandardLockWrappers) {
  goro::run(
      [] {
        goro::Mutex mu;
        int value = 0;
        goro::WaitGroup wg;
        for (int i = 0; i < 20; ++i) {
          wg.go([&] {
            for (int k = 0; k < 100; ++k) {
              std::lock_guard lock(mu);
              ++value;
            }
          });
        }
        wg.wait();
        EXPECT_EQ(value, 2000);
        {
          std::unique_lock lock(mu);
          EXPECT_TRUE(lock.owns_lock());
          EXPECT_FALSE(mu.try_lock());
        }
        {
          std::unique_lock lock(mu, std::try_to_lock);
          EXPECT_TRUE(lock.owns_lock());
        }
        goro::Mutex other;
        {
          std::scoped_lock both(mu, other);
          EXPECT_FALSE(mu.try_lock());
          EXPECT_FALSE(other.try_lock());
        }
        EXPECT_TRUE(mu.try_lock());
        mu.unlock();
      },
      {.procs = 2});
}

TEST(Mutex, LockParksGoroutineNotWorker) {
  // On one worker, a goroutine waiting for the mutex must let the holder run.
  goro::run(
      [] {
        goro::Mutex mu;
        mu.lock();
        std::atomic<bool> acquired{false};
        goro::WaitGroup wg;
        wg.go([&] {
          mu.lock();
          acquired = true;
          mu.unlock();
        });
        for (int i = 0; i < 20; ++i) goro::yield();
        EXPECT_FALSE(acquired.load());
        mu.unlock();
        wg.wait();
        EXPECT_TRUE(acquired.load());
      },
      {.procs = 1});
}

TEST(Mutex, UnlockedByAnotherGoroutine) {
  goro::run(
      [] {
        goro::Mutex mu;
        mu.lock();
        goro::go([&mu] { mu.unlock(); });
        mu.lock();  // only succeeds because the other goroutine unlocked it
        mu.unlock();
        SUCCEED();
      },
      {.procs = 2, .on_fatal = goro::OnFatal::raise});
}

TEST(Mutex, DestroyRightAfterLastUnlock) {
  const int rounds = scaled(2000);
  goro::run(
      [] {
        for (int r = 0; r < rounds; ++r) {
          auto mu = std::make_unique<goro::Mutex>();
          goro::Chan<int> acquired(1);
          mu->lock();
          goro::go([m = mu.get(), acquired]() mutable {
            m->lock();  // parks until main unlocks
            acquired.send(0);
            m->unlock();
          });
          goro::yield();
          mu->unlock();
          acquired.recv();  // the goroutine holds it now
          mu->lock();       // waits for the goroutine's unlock ...
          mu->unlock();
          mu.reset();  // ... which may still be returning from unlock()
        }
        SUCCEED();
      },
      {.procs = 2});
}

// ---------------------------------------------------------------- RWMutex

TEST(RWMutex, ReadersHoldTheLockTogether) {
  constexpr int kReaders = 8;
  goro::run(
      [] {
        goro::RWMutex rw;
        goro::Chan<int> in(kReaders);
        goro::Chan<int> release;
        goro::WaitGroup wg;
        for (int i = 0; i < kReaders; ++i) {
          wg.go([&, i] {
            rw.lock_shared();
            in.send(i);
            release.recv();  // hold the read lock until every reader has it
            rw.unlock_shared();
          });
        }
        for (int i = 0; i < kReaders; ++i) in.recv();  // all of them hold it at once
        EXPECT_FALSE(rw.try_lock());
        EXPECT_TRUE(rw.try_lock_shared());
        rw.unlock_shared();
        release.close();
        wg.wait();
        EXPECT_TRUE(rw.try_lock());
        rw.unlock();
      },
      {.procs = 2, .on_fatal = goro::OnFatal::raise});
}

TEST(RWMutex, WriterIsExclusive) {
  const int per = scaled(2000);
  std::atomic<int> readers_inside{0};
  std::atomic<int> writers_inside{0};
  std::atomic<int> violations{0};
  long long a = 0;
  long long b = 0;  // a == b whenever no writer is inside
  goro::run(
      [&] {
        goro::RWMutex rw;
        EXPECT_TRUE(rw.try_lock());
        EXPECT_FALSE(rw.try_lock());
        EXPECT_FALSE(rw.try_lock_shared());
        rw.unlock();

        goro::WaitGroup wg;
        for (int w = 0; w < 4; ++w) {
          wg.go([&] {
            for (int i = 0; i < per; ++i) {
              rw.lock();
              if (writers_inside.fetch_add(1) != 0 || readers_inside.load() != 0) ++violations;
              ++a;
              if (i % 32 == 0) goro::yield();
              ++b;
              writers_inside.fetch_sub(1);
              rw.unlock();
            }
          });
        }
        for (int r = 0; r < 8; ++r) {
          wg.go([&] {
            for (int i = 0; i < per; ++i) {
              rw.lock_shared();
              readers_inside.fetch_add(1);
              if (writers_inside.load() != 0 || a != b) ++violations;
              if (i % 32 == 0) goro::yield();
              readers_inside.fetch_sub(1);
              rw.unlock_shared();
            }
          });
        }
        wg.wait();
      },
      {.procs = 2});
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(a, 4LL * per);
  EXPECT_EQ(b, 4LL * per);
}

TEST(RWMutex, WriterNotStarvedByStreamOfReaders) {
  goro::run(
      [] {
        goro::RWMutex rw;
        std::atomic<bool> stop{false};
        std::atomic<long> reads{0};
        goro::WaitGroup readers;
        // Overlapping readers: at every moment some reader holds the lock.
        for (int i = 0; i < 4; ++i) {
          readers.go([&] {
            while (!stop) {
              rw.lock_shared();
              ++reads;
              goro::yield();
              rw.unlock_shared();
            }
          });
        }
        EXPECT_TRUE(eventually([&] { return reads.load() > 100; }));
        goro::Chan<int> writer_done(1);
        goro::go([&rw, writer_done]() mutable {
          rw.lock();
          rw.unlock();
          writer_done.send(1);
        });
        const std::size_t i =
            goro::select(goro::on_recv(writer_done), goro::on_recv(goro::after(20s)));
        EXPECT_EQ(i, 0u) << "writer starved";
        stop = true;
        readers.wait();
        if (i != 0) writer_done.recv();  // let the writer finish before returning
      },
      {.procs = 2});
}

TEST(RWMutex, StandardLockWrappers) {
  goro::run([] {
    goro::RWMutex rw;
    {
      std::shared_lock r1(rw);
      std::shared_lock r2(rw);
      EXPECT_TRUE(r1.owns_lock());
      EXPECT_TRUE(r2.owns_lock());
      EXPECT_FALSE(rw.try_lock());
    }
    {
      std::unique_lock w(rw);
      EXPECT_FALSE(rw.try_lock_shared());
    }
    {
      std::lock_guard w(rw);
      EXPECT_FALSE(rw.try_lock());
    }
    EXPECT_TRUE(rw.try_lock_shared());
    rw.unlock_shared();
  });
}

TEST(RWMutex, UnlockOfUnlockedThrows) {
  goro::run([] {
    goro::RWMutex rw;
    EXPECT_THROW(rw.unlock(), std::logic_error);
    EXPECT_THROW(rw.unlock_shared(), std::logic_error);
  });
}

// ---------------------------------------------------------------- Once

TEST(Once, RunsExactlyOnceAndCallersSeeTheResult) {
  std::atomic<int> calls{0};
  std::atomic<int> saw_uninitialised{0};
  goro::run(
      [&] {
        goro::Once once;
        int value = 0;
        goro::WaitGroup wg;
        for (int i = 0; i < 50; ++i) {
          wg.go([&] {
            once.call([&] {
              ++calls;
              goro::yield();  // others arrive while it runs: they must wait for it
              value = 42;
            });
            if (value != 42) ++saw_uninitialised;
          });
        }
        wg.wait();
      },
      {.procs = 2});
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(saw_uninitialised.load(), 0);
}

TEST(Once, ThrowingCallLeavesItUndone) {
  goro::run([] {
    goro::Once once;
    int runs = 0;
    EXPECT_THROW(once.call([&] {
      ++runs;
      throw std::runtime_error("first");
    }),
                 std::runtime_error);
    once.call([&] { ++runs; });
    EXPECT_EQ(runs, 2);
    once.call([&] { ++runs; });
    EXPECT_EQ(runs, 2);
  });
}

// ---------------------------------------------------------------- Cond

// Spawns n waiters on cond, one at a time, each parked before the next one starts. Waiter i
// sends i to `woke` after it wakes.
void spawn_cond_waiters(int n, goro::Mutex& mu, goro::Cond& cond, int& waiting,
                        const bool& go_ahead, goro::Chan<int> woke, goro::WaitGroup& wg) {
  for (int i = 0; i < n; ++i) {
    wg.go([&mu, &cond, &waiting, &go_ahead, woke, i]() mutable {
      std::unique_lock lock(mu);
      ++waiting;
      do {
        cond.wait();
      } while (!go_ahead);
      woke.send(i);
    });
    // waiting is incremented under the mutex, which cond.wait releases only once the
    // waiter is queued: seeing the count under the mutex means waiter i is queued.
    ASSERT_TRUE(eventually([&] {
      std::lock_guard lock(mu);
      return waiting == i + 1;
    }));
  }
}

TEST(Cond, SignalWakesLongestWaiterFirst) {
  constexpr int kN = 6;
  goro::run(
      [] {
        goro::Mutex mu;
        goro::Cond cond(mu);
        int waiting = 0;
        bool go_ahead = true;  // every wake-up is final
        goro::Chan<int> woke(kN);
        goro::WaitGroup wg;
        spawn_cond_waiters(kN, mu, cond, waiting, go_ahead, woke, wg);
        for (int i = 0; i < kN; ++i) {
          {
            std::lock_guard lock(mu);
            cond.signal();
          }
          EXPECT_EQ(woke.recv(), i);
        }
        wg.wait();
      },
      {.procs = 2});
}

TEST(Cond, SignalWakesOnlyOne) {
  goro::run(
      [] {
        goro::Mutex mu;
        goro::Cond cond(mu);
        int waiting = 0;
        bool go_ahead = true;
        goro::Chan<int> woke(3);
        goro::WaitGroup wg;
        spawn_cond_waiters(3, mu, cond, waiting, go_ahead, woke, wg);
        {
          std::lock_guard lock(mu);
          cond.signal();
        }
        EXPECT_EQ(woke.recv(), 0);
        for (int i = 0; i < 50; ++i) goro::yield();
        EXPECT_EQ(woke.size(), 0u);  // the other two still wait
        {
          std::lock_guard lock(mu);
          cond.broadcast();
        }
        wg.wait();
        EXPECT_EQ(woke.size(), 2u);
      },
      {.procs = 2});
}

TEST(Cond, BroadcastWakesAll) {
  constexpr int kN = 20;
  goro::run(
      [] {
        goro::Mutex mu;
        goro::Cond cond(mu);
        int waiting = 0;
        bool go_ahead = false;
        goro::Chan<int> woke(kN);
        goro::WaitGroup wg;
        spawn_cond_waiters(kN, mu, cond, waiting, go_ahead, woke, wg);
        {
          std::lock_guard lock(mu);
          go_ahead = true;
          cond.broadcast();
        }
        wg.wait();
        EXPECT_EQ(woke.size(), static_cast<std::size_t>(kN));
      },
      {.procs = 2});
}

TEST(Cond, SignalWithoutWaitersIsNotRemembered) {
  goro::run(
      [] {
        goro::Mutex mu;
        goro::Cond cond(mu);
        cond.signal();
        cond.broadcast();
        int waiting = 0;
        bool go_ahead = true;
        goro::Chan<int> woke(1);
        goro::WaitGroup wg;
        spawn_cond_waiters(1, mu, cond, waiting, go_ahead, woke, wg);
        for (int i = 0; i < 50; ++i) goro::yield();
        EXPECT_EQ(woke.size(), 0u);
        {
          std::lock_guard lock(mu);
          cond.signal();
        }
        EXPECT_EQ(woke.recv(), 0);
        wg.wait();
      },
      {.procs = 2});
}

TEST(Mutex, WaiterNotStarvedByBargingHolder) {
  // A holder that unlocks and immediately relocks must not keep a parked waiter out
  // forever (Go's starvation mode hands the lock over).
  goro::run(
      [] {
        goro::Mutex mu;
        std::atomic<bool> stop{false};
        std::atomic<bool> hog_running{false};
        goro::WaitGroup wg;
        wg.go([&] {
          for (long i = 0; !stop; ++i) {
            mu.lock();
            hog_running = true;
            mu.unlock();
            if (i % 1000 == 0) goro::yield();
          }
        });
        EXPECT_TRUE(eventually([&] { return hog_running.load(); }));
        goro::Chan<int> got_it(1);
        wg.go([&mu, got_it]() mutable {
          mu.lock();
          mu.unlock();
          got_it.send(1);
        });
        const std::size_t i = goro::select(goro::on_recv(got_it), goro::on_recv(goro::after(20s)));
        EXPECT_EQ(i, 0u) << "waiter starved";
        stop = true;
        wg.wait();
      },
      {.procs = 2});
}

}  // namespace
