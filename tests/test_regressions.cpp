// Regression tests: each reproduces a bug that was found in goro, named after it.
#include <gtest/gtest.h>

#include <atomic>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace {

using goro_test::scaled;

// blocking() helpers ready goroutines through the global run queue; taking a single
// goroutine from it once left the rest of the queue linked to it, so goroutines ran twice.
TEST(Regression, BlockingCallsFeedingChannels) {
  constexpr int n = scaled(2000);
  long sum = goro::run(
      [] {
        goro::Chan<int> in(1), out(1);
        goro::go([in]() mutable {
          for (int i = 0; i < n; ++i) in.send(goro::blocking([i] { return i; }));
          in.close();
        });
        goro::WaitGroup wg;
        wg.go([in, out]() mutable {
          for (int v : in) out.send(v);
        });
        goro::go([&wg, out]() mutable {
          wg.wait();
          out.close();
        });
        long s = 0;
        for (int v : out) s += goro::blocking([v] { return v; });
        return s;
      },
      {.procs = 2});
  EXPECT_EQ(sum, static_cast<long>(n) * (n - 1) / 2);
}

// A goroutine parked on a channel it reaches only by reference must keep the channel alive
// when main returns and destroys the last handle; run() then releases it without hanging.
TEST(Regression, ParkedGoroutineKeepsItsChannelAlive) {
  for (int round = 0; round < 20; ++round) {
    int got = goro::run(
        [] {
          goro::Chan<int> a;
          goro::Chan<int> parked;
          goro::Chan<int> started;
          goro::go([&] {
            started.send(0);
            parked.recv();  // still parked here, by reference, when main returns
          });
          started.recv();
          goro::yield();  // one worker: the goroutine runs until it parks on `parked`
          goro::go([&] { a.send(1); });
          return *a.recv() + 1;
        },
        {.procs = 1});
    EXPECT_EQ(got, 2);
  }
}

// A goroutine that fills its worker's run queue by spawning yields, so the goroutines it
// spawned run (and give their stacks back) before it goes on.
TEST(Regression, SpawnLoopLetsChildrenRun) {
  constexpr int n = scaled(20000);
  int max_alive = goro::run(
      [] {
        goro::WaitGroup wg;
        int max_alive = 0;
        for (int i = 0; i < n; ++i) {
          wg.go([] {});
          max_alive = std::max<int>(max_alive, static_cast<int>(goro::num_goroutines()));
        }
        wg.wait();
        return max_alive;
      },
      {.procs = 1});
  EXPECT_LT(max_alive, 1000);
}

}  // namespace

namespace {

// Two goroutines handing a value back and forth run each other through the worker's runnext
// slot; without a bound on that streak the rest of the worker's queue (here: main) starved.
TEST(Regression, HandOffPairDoesNotStarveItsWorker) {
  bool finished = goro::run(
      [] {
        std::atomic<bool> stop{false};
        goro::Chan<int> a;
        goro::Chan<int> b;
        goro::WaitGroup wg;
        wg.go([&] {
          while (!stop.load()) {
            a.send(1);
            b.recv();
          }
          a.close();
        });
        wg.go([&] {
          while (a.recv()) b.send(1);
        });
        goro::yield();  // the pair now hands off through runnext; main waits in the queue
        stop.store(true);
        wg.wait();
        return true;
      },
      {.procs = 1});
  EXPECT_TRUE(finished);
}

}  // namespace
