// time: sleep, after, Timer and Ticker. Elapsed times are checked as lower bounds; upper
// bounds are generous (the suite also runs under sanitizers on a loaded machine).
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro::Clock;
using goro_test::since;

namespace {

constexpr auto kGenerous = 5s;  // "returns at once" means well below this

// Receives from ch, giving up after `limit`; nullopt on timeout.
std::optional<Clock::time_point> recv_within(goro::RecvChan<Clock::time_point> ch,
                                             Clock::duration limit) {
  std::optional<Clock::time_point> got;
  goro::select(goro::on_recv(ch, [&](std::optional<Clock::time_point> t) { got = t; }),
               goro::on_recv(goro::after(limit)));
  return got;
}

// True if nothing arrives on ch within `window`.
bool stays_quiet(goro::RecvChan<Clock::time_point> ch, Clock::duration window) {
  return goro::select(goro::on_recv(ch), goro::on_recv(goro::after(window))) == 1;
}

TEST(Sleep, NonPositiveReturnsAtOnce) {
  goro::run([] {
    const auto start = Clock::now();
    goro::sleep(0s);
    goro::sleep(-1s);
    goro::sleep(Clock::duration::min());
    EXPECT_LT(since(start), kGenerous);
  });
}

TEST(Sleep, SleepsAtLeastTheDuration) {
  goro::run([] {
    const auto start = Clock::now();
    goro::sleep(30ms);
    const auto elapsed = since(start);
    EXPECT_GE(elapsed, 30ms);
    EXPECT_LT(elapsed, kGenerous);
  });
}

TEST(Sleep, ParksOnlyTheGoroutine) {
  // Many goroutines sleep at once on one worker; total time is about one sleep, not the sum.
  goro::run(
      [] {
        const auto start = Clock::now();
        goro::WaitGroup wg;
        std::atomic<int> early{0};
        for (int i = 0; i < 100; ++i) {
          wg.go([&] {
            const auto t0 = Clock::now();
            goro::sleep(50ms);
            if (since(t0) < 50ms) ++early;
          });
        }
        wg.wait();
        EXPECT_EQ(early.load(), 0);
        EXPECT_LT(since(start), 4s);  // 100 sequential sleeps would take 5 s
      },
      {.procs = 1});
}

TEST(Sleep, WakesInDeadlineOrder) {
  goro::run(
      [] {
        goro::Chan<int> order(3);
        goro::WaitGroup wg;
        for (int ms : {300, 0, 150}) {
          wg.go([order, ms]() mutable {
            goro::sleep(std::chrono::milliseconds(ms));
            order.send(ms);
          });
        }
        wg.wait();
        EXPECT_EQ(order.recv(), 0);
        EXPECT_EQ(order.recv(), 150);
        EXPECT_EQ(order.recv(), 300);
      },
      {.procs = 2});
}

TEST(After, FiresAfterTheDuration) {
  goro::run([] {
    const auto start = Clock::now();
    goro::RecvChan<Clock::time_point> ch = goro::after(25ms);
    EXPECT_EQ(ch.capacity(), 1u);
    std::optional<Clock::time_point> t = ch.recv();
    ASSERT_TRUE(t.has_value());
    EXPECT_GE(*t, start + 25ms);
    EXPECT_GE(since(start), 25ms);
    EXPECT_LT(since(start), kGenerous);
  });
}

TEST(After, NonPositiveFiresAtOnce) {
  goro::run([] {
    const auto start = Clock::now();
    EXPECT_TRUE(goro::after(0s).recv().has_value());
    EXPECT_TRUE(goro::after(-3s).recv().has_value());
    EXPECT_LT(since(start), kGenerous);
  });
}

TEST(Timer, FiresOnce) {
  goro::run([] {
    const auto start = Clock::now();
    goro::Timer t(20ms);
    auto fired = t.chan().recv();
    ASSERT_TRUE(fired.has_value());
    EXPECT_GE(*fired, start + 20ms);
    EXPECT_GE(since(start), 20ms);
    EXPECT_TRUE(stays_quiet(t.chan(), 60ms));  // one value only
  });
}

TEST(Timer, NonPositiveFiresAtOnce) {
  goro::run([] {
    const auto start = Clock::now();
    goro::Timer t(0s);
    EXPECT_TRUE(t.chan().recv().has_value());
    goro::Timer neg(-1s);
    EXPECT_TRUE(neg.chan().recv().has_value());
    EXPECT_LT(since(start), kGenerous);
  });
}

TEST(Timer, StopBeforeFiring) {
  goro::run([] {
    goro::Timer t(40ms);
    EXPECT_TRUE(t.stop());   // this call stopped it
    EXPECT_FALSE(t.stop());  // already stopped
    EXPECT_TRUE(stays_quiet(t.chan(), 100ms));
  });
}

TEST(Timer, StopAfterFiring) {
  goro::run([] {
    goro::Timer t(1ms);
    EXPECT_TRUE(t.chan().recv().has_value());
    EXPECT_FALSE(t.stop());  // it had fired
  });
}

TEST(Timer, DeliveredValueStaysAfterStop) {
  goro::run([] {
    goro::Timer t(1ms);
    auto ch = t.chan();
    // Wait (bounded) until the timer has delivered without receiving the value.
    const auto deadline = Clock::now() + 10s;
    while (ch.size() == 0 && Clock::now() < deadline) goro::sleep(1ms);
    ASSERT_EQ(ch.size(), 1u);
    EXPECT_FALSE(t.stop());
    EXPECT_TRUE(ch.try_recv().has_value());  // still there
  });
}

TEST(Timer, ResetActiveTimer) {
  goro::run([] {
    goro::Timer t(1h);
    const auto start = Clock::now();
    EXPECT_TRUE(t.reset(20ms));  // it was active
    auto fired = recv_within(t.chan(), 10s);
    ASSERT_TRUE(fired.has_value()) << "reset timer never fired";
    EXPECT_GE(*fired, start + 20ms);
    EXPECT_GE(since(start), 20ms);
  });
}

TEST(Timer, ResetAfterFiringOrStopRearms) {
  goro::run([] {
    goro::Timer t(1ms);
    EXPECT_TRUE(t.chan().recv().has_value());
    EXPECT_FALSE(t.reset(10ms));  // it had fired
    EXPECT_TRUE(recv_within(t.chan(), 10s).has_value());

    goro::Timer s(1h);
    EXPECT_TRUE(s.stop());
    const auto start = Clock::now();
    EXPECT_FALSE(s.reset(15ms));  // it had been stopped
    auto fired = recv_within(s.chan(), 10s);
    ASSERT_TRUE(fired.has_value());
    EXPECT_GE(since(start), 15ms);
    EXPECT_FALSE(s.stop());  // fired again, so nothing to stop
  });
}

TEST(Timer, ResetPostponesFiring) {
  goro::run([] {
    goro::Timer t(30ms);
    const auto start = Clock::now();
    EXPECT_TRUE(t.reset(150ms));
    auto fired = recv_within(t.chan(), 10s);
    ASSERT_TRUE(fired.has_value());
    EXPECT_GE(*fired, start + 150ms);
  });
}

TEST(Timer, DestroyedTimerStillFires) {
  goro::run([] {
    goro::RecvChan<Clock::time_point> ch;
    {
      goro::Timer t(5ms);
      ch = t.chan();
    }
    EXPECT_TRUE(recv_within(ch, 10s).has_value());
  });
}

TEST(Timer, MoveKeepsTheTimer) {
  goro::run([] {
    goro::Timer a(10ms);
    auto ch = a.chan();
    goro::Timer b(std::move(a));
    EXPECT_TRUE(b.chan() == ch);
    EXPECT_TRUE(recv_within(b.chan(), 10s).has_value());
    EXPECT_FALSE(b.stop());
  });
}

TEST(Timer, ManyConcurrentTimers) {
  const int n = goro_test::scaled(1000);
  std::atomic<int> early{0};
  goro::run(
      [&] {
        goro::WaitGroup wg;
        for (int i = 0; i < n; ++i) {
          wg.go([&, i] {
            const auto d = std::chrono::milliseconds(i % 20);
            const auto start = Clock::now();
            goro::Timer t(d);
            t.chan().recv();
            if (since(start) < d) ++early;
          });
        }
        wg.wait();
      },
      {.procs = 2});
  EXPECT_EQ(early.load(), 0);
}

TEST(Ticker, Ticks) {
  goro::run([] {
    const auto start = Clock::now();
    goro::Ticker t(10ms);
    EXPECT_EQ(t.chan().capacity(), 1u);
    Clock::time_point last = start;
    for (int i = 0; i < 3; ++i) {
      auto tick = recv_within(t.chan(), 10s);
      ASSERT_TRUE(tick.has_value()) << "tick " << i;
      EXPECT_GT(*tick, last);
      last = *tick;
    }
    EXPECT_GE(since(start), 30ms);
    EXPECT_GE(last, start + 30ms);
    t.stop();
  });
}

TEST(Ticker, StopStopsTicks) {
  goro::run([] {
    goro::Ticker t(5ms);
    ASSERT_TRUE(recv_within(t.chan(), 10s).has_value());
    t.stop();
    t.chan().try_recv();  // a tick may have been delivered before stop
    EXPECT_TRUE(stays_quiet(t.chan(), 60ms));
  });
}

TEST(Ticker, ResetChangesThePeriod) {
  goro::run([] {
    goro::Ticker t(5ms);
    ASSERT_TRUE(recv_within(t.chan(), 10s).has_value());
    t.reset(100ms);
    const auto reset_at = Clock::now();
    t.chan().try_recv();  // drop a tick delivered before the reset
    ASSERT_TRUE(recv_within(t.chan(), 10s).has_value());
    EXPECT_GE(since(reset_at), 100ms);
    ASSERT_TRUE(recv_within(t.chan(), 10s).has_value());
    EXPECT_GE(since(reset_at), 200ms);
    t.stop();
    // Reset restarts a stopped ticker.
    t.chan().try_recv();
    t.reset(5ms);
    EXPECT_TRUE(recv_within(t.chan(), 10s).has_value());
  });
}

TEST(Ticker, DropsTicksNobodyReceives) {
  goro::run([] {
    goro::Ticker t(1ms);
    goro::sleep(30ms);
    EXPECT_LE(t.chan().size(), 1u);  // about 30 ticks came due, the channel holds one
    t.stop();
  });
}

TEST(Ticker, NonPositivePeriodThrows) {
  goro::run([] {
    try {
      goro::Ticker t(0s);
      ADD_FAILURE() << "no exception";
    } catch (const std::invalid_argument& e) {
      EXPECT_STREQ(e.what(), "non-positive interval for Ticker");
    }
    EXPECT_THROW(goro::Ticker(-1ms), std::invalid_argument);
    goro::Ticker t(1h);
    try {
      t.reset(0s);
      ADD_FAILURE() << "no exception";
    } catch (const std::invalid_argument& e) {
      EXPECT_STREQ(e.what(), "non-positive interval for Ticker");
    }
    t.stop();
  });
}

TEST(Ticker, DestroyedTickerStops) {
  goro::run([] {
    goro::RecvChan<Clock::time_point> ch;
    {
      goro::Ticker t(5ms);
      ch = t.chan();
      ASSERT_TRUE(recv_within(ch, 10s).has_value());
    }
    ch.try_recv();
    EXPECT_TRUE(stays_quiet(ch, 60ms));
  });
}

TEST(Time, PendingTimersDoNotKeepRunAlive) {
  // run returns when main returns even with far-away timers pending.
  const auto start = Clock::now();
  goro::run([] {
    goro::Timer t(1h);
    auto a = goro::after(1h);
    goro::Ticker tick(1h);
  });
  EXPECT_LT(since(start), kGenerous);
}

TEST(Time, TimerChurnAcrossGoroutines) {
  // Many short-lived timers created, stopped, reset and abandoned on several workers.
  const int rounds = goro_test::scaled(300);
  std::atomic<int> fired{0};
  std::atomic<int> timed_out{0};
  goro::run(
      [&] {
        goro::WaitGroup wg;
        for (int g = 0; g < 8; ++g) {
          wg.go([&, g] {
            goro::Chan<int> never;
            for (int i = 0; i < rounds; ++i) {
              goro::Timer far(1h);
              goro::Timer near(std::chrono::microseconds((i + g) % 200));
              if (i % 3 == 0) {
                EXPECT_TRUE(far.reset(2h));
              }
              EXPECT_TRUE(far.stop());
              if (near.chan().recv()) ++fired;
              if (goro::select(goro::on_recv(never), goro::on_recv(goro::after(100us))) == 1) {
                ++timed_out;
              }
            }
          });
        }
        wg.wait();
      },
      {.procs = 2});
  EXPECT_EQ(fired.load(), 8 * rounds);
  EXPECT_EQ(timed_out.load(), 8 * rounds);
}

}  // namespace
