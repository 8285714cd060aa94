// select: default case, indices, callbacks, nil and closed channels, fairness, storms of
// concurrent selects, lock ordering, and timeouts.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::scaled;

namespace {

TEST(Select, DefaultRunsWhenNothingIsReady) {
  goro::run([] {
    goro::Chan<int> a;
    goro::Chan<int> b(1);
    bool defaulted = false;
    bool received = false;
    std::size_t i = goro::select(goro::on_recv(a, [&](std::optional<int>) { received = true; }),
                                 goro::on_recv(b, [&](std::optional<int>) { received = true; }),
                                 goro::on_default([&] { defaulted = true; }));
    EXPECT_EQ(i, 2u);
    EXPECT_TRUE(defaulted);
    EXPECT_FALSE(received);
    // The default case may stand anywhere and may omit its callback.
    EXPECT_EQ(goro::select(goro::on_default(), goro::on_recv(a)), 0u);
    EXPECT_EQ(goro::select(goro::on_recv(a), goro::on_default(), goro::on_recv(b)), 1u);
    // A full buffer makes a send case not ready either.
    b.send(1);
    EXPECT_EQ(goro::select(goro::on_send(b, 2), goro::on_default()), 1u);
    EXPECT_EQ(b.size(), 1u);
  });
}

TEST(Select, IndexCountsCasesInWrittenOrderIncludingDefault) {
  goro::run([] {
    goro::Chan<int> empty;
    goro::Chan<int> ready(1);
    ready.send(5);
    std::optional<int> got;
    std::size_t i = goro::select(goro::on_default(), goro::on_recv(empty),
                                 goro::on_recv(ready, [&](std::optional<int> v) { got = v; }));
    EXPECT_EQ(i, 2u);
    EXPECT_EQ(got, 5);
    goro::Chan<int> room(1);
    i = goro::select(goro::on_recv(empty), goro::on_default(), goro::on_send(room, 6));
    EXPECT_EQ(i, 2u);
    EXPECT_EQ(room.recv(), 6);
  });
}

TEST(Select, CallbacksAreOptional) {
  goro::run([] {
    goro::Chan<int> ch(2);
    EXPECT_EQ(goro::select(goro::on_send(ch, 1)), 0u);
    EXPECT_EQ(ch.size(), 1u);
    EXPECT_EQ(goro::select(goro::on_recv(ch)), 0u);  // the value is consumed and dropped
    EXPECT_EQ(ch.size(), 0u);
    bool sent = false;
    EXPECT_EQ(goro::select(goro::on_send(ch, 3, [&] { sent = true; })), 0u);
    EXPECT_TRUE(sent);
    EXPECT_EQ(ch.recv(), 3);
  });
}

TEST(Select, BlocksUntilACaseIsReady) {
  goro::run(
      [] {
        goro::Chan<int> a;
        goro::Chan<std::string> b;
        goro::WaitGroup wg;
        wg.go([b]() mutable { b.send("late"); });
        std::optional<std::string> got;
        std::size_t i = goro::select(
            goro::on_recv(a), goro::on_recv(b, [&](std::optional<std::string> v) { got = v; }));
        EXPECT_EQ(i, 1u);
        EXPECT_EQ(got, "late");

        // A blocked send case completes when a receiver arrives.
        goro::Chan<int> out;
        goro::Chan<int> seen(1);
        goro::go([out, seen]() mutable { seen.send(*out.recv()); });
        EXPECT_EQ(goro::select(goro::on_recv(a), goro::on_send(out, 42)), 1u);
        EXPECT_EQ(seen.recv(), 42);
        wg.wait();
      },
      {.procs = 2});
}

TEST(Select, MixedChannelTypesAndViews) {
  goro::run([] {
    goro::Chan<int> ints(1);
    goro::Chan<std::string> strings(1);
    goro::RecvChan<int> r = ints;
    goro::SendChan<std::string> s = strings;
    std::size_t i = goro::select(goro::on_recv(r), goro::on_send(s, "hi"));
    EXPECT_EQ(i, 1u);  // only the send is ready
    EXPECT_EQ(strings.recv(), "hi");
    ints.send(4);
    std::optional<int> got;
    i = goro::select(goro::on_send(s, std::string(100, 'x')),
                     goro::on_recv(r, [&](std::optional<int> v) { got = v; }));
    if (i == 0) {
      EXPECT_EQ(strings.recv(), std::string(100, 'x'));
      EXPECT_EQ(ints.size(), 1u);
    } else {
      EXPECT_EQ(got, 4);
      EXPECT_EQ(strings.size(), 0u);
    }
  });
}

TEST(Select, MoveOnlyValues) {
  goro::run([] {
    goro::Chan<std::unique_ptr<int>> ch(1);
    EXPECT_EQ(goro::select(goro::on_send(ch, std::make_unique<int>(8))), 0u);
    // Not chosen: the value is not delivered anywhere.
    EXPECT_EQ(goro::select(goro::on_send(ch, std::make_unique<int>(9)), goro::on_default()), 1u);
    std::unique_ptr<int> got;
    goro::select(goro::on_recv(ch, [&](std::optional<std::unique_ptr<int>> v) {
      if (v) got = std::move(*v);
    }));
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(*got, 8);
    EXPECT_EQ(ch.size(), 0u);
  });
}

TEST(Select, NilCasesNeverFire) {
  goro::run(
      [] {
        goro::Chan<int> nil(nullptr);
        goro::RecvChan<int> nil_r(nullptr);
        goro::SendChan<int> nil_s(nullptr);
        for (int round = 0; round < 1000; ++round) {
          std::size_t i =
              goro::select(goro::on_recv(nil), goro::on_send(nil, 1), goro::on_recv(nil_r),
                           goro::on_send(nil_s, 2), goro::on_default());
          ASSERT_EQ(i, 4u);
        }
        // With a real channel that becomes ready later, only the real case fires.
        goro::Chan<int> real;
        goro::WaitGroup wg;
        wg.go([real]() mutable { real.send(3); });
        std::optional<int> got;
        std::size_t i = goro::select(goro::on_recv(nil), goro::on_send(nil, 1),
                                     goro::on_recv(real, [&](std::optional<int> v) { got = v; }));
        EXPECT_EQ(i, 2u);
        EXPECT_EQ(got, 3);
        wg.wait();
      },
      {.procs = 2});
}

TEST(Select, ClosedReceiveCaseGetsNullopt) {
  goro::run([] {
    goro::Chan<int> ch;
    ch.close();
    bool called = false;
    std::optional<int> got = 99;
    std::size_t i = goro::select(goro::on_recv(ch,
                                               [&](std::optional<int> v) {
                                                 called = true;
                                                 got = v;
                                               }),
                                 goro::on_default());
    EXPECT_EQ(i, 0u);  // a closed channel is ready: the default does not run
    EXPECT_TRUE(called);
    EXPECT_EQ(got, std::nullopt);
  });
}

TEST(Select, ClosedWhileBlockedWakesReceiveCase) {
  goro::run(
      [] {
        goro::Chan<int> a;
        goro::Chan<int> b;
        goro::go([b]() mutable { b.close(); });
        bool got_nullopt = false;
        std::size_t i = goro::select(
            goro::on_recv(a), goro::on_recv(b, [&](std::optional<int> v) { got_nullopt = !v; }));
        EXPECT_EQ(i, 1u);
        EXPECT_TRUE(got_nullopt);
      },
      {.procs = 2});
}

TEST(Select, SendOnClosedThrows) {
  goro::run([] {
    goro::Chan<int> ch(1);
    ch.close();
    try {
      goro::select(goro::on_send(ch, 1));
      ADD_FAILURE() << "no exception";
    } catch (const goro::ClosedChannel& e) {
      EXPECT_STREQ(e.what(), "send on closed channel");
    }
    // A send case on a closed channel is ready (and panics) even with a default case.
    EXPECT_THROW(goro::select(goro::on_send(ch, 1), goro::on_default()), goro::ClosedChannel);
  });
}

TEST(Select, ClosedWhileBlockedInSendCaseThrows) {
  goro::run(
      [] {
        goro::Chan<int> a;
        goro::Chan<int> never;
        goro::Chan<int> ready(1);
        goro::go([a, ready]() mutable {
          ready.send(0);
          a.close();
        });
        ready.recv();
        EXPECT_THROW(goro::select(goro::on_recv(never), goro::on_send(a, 1)), goro::ClosedChannel);
      },
      {.procs = 2});
}

TEST(Select, CallbackExceptionPropagates) {
  goro::run([] {
    goro::Chan<int> ch(1);
    ch.send(1);
    EXPECT_THROW(
        goro::select(goro::on_recv(ch, [](std::optional<int>) { throw std::runtime_error("cb"); })),
        std::runtime_error);
    EXPECT_EQ(ch.size(), 0u);
  });
}

TEST(Select, FairAmongReadyCases) {
  const int rounds = goro_test::kSanitized ? 4000 : 20000;
  const int first = goro::run([] {
    goro::Chan<int> a(1);
    goro::Chan<int> b(1);
    a.send(0);
    b.send(0);
    int chose_a = 0;
    for (int r = 0; r < rounds; ++r) {
      if (goro::select(goro::on_recv(a), goro::on_recv(b)) == 0) {
        ++chose_a;
        a.send(0);
      } else {
        b.send(0);
      }
    }
    return chose_a;
  });
  const double share = static_cast<double>(first) / rounds;
  EXPECT_GE(share, 0.45) << first << " of " << rounds;
  EXPECT_LE(share, 0.55) << first << " of " << rounds;
}

TEST(Select, FairAmongReadySendCases) {
  const int rounds = goro_test::kSanitized ? 4000 : 20000;
  const int first = goro::run([] {
    goro::Chan<int> a(1);
    goro::Chan<int> b(1);
    int chose_a = 0;
    for (int r = 0; r < rounds; ++r) {
      if (goro::select(goro::on_send(a, 1), goro::on_send(b, 2)) == 0) {
        ++chose_a;
        a.recv();
      } else {
        b.recv();
      }
    }
    return chose_a;
  });
  const double share = static_cast<double>(first) / rounds;
  EXPECT_GE(share, 0.45) << first << " of " << rounds;
  EXPECT_LE(share, 0.55) << first << " of " << rounds;
}

// Receives from up to three channels until all are closed; a closed channel's case is
// disabled by turning its local handle into a nil channel (as in Go).
void select_drain(goro::Chan<int> x, goro::Chan<int> y, goro::Chan<int> z,
                  std::vector<std::atomic<int>>& seen) {
  auto taker = [&](goro::Chan<int>& self) {
    return [&](std::optional<int> v) {
      if (v) {
        seen[*v].fetch_add(1, std::memory_order_relaxed);
      } else {
        self = nullptr;
      }
    };
  };
  while (x || y || z) {
    goro::select(goro::on_recv(x, taker(x)), goro::on_recv(y, taker(y)),
                 goro::on_recv(z, taker(z)));
  }
}

TEST(Select, StormEveryValueExactlyOnce) {
  constexpr int kSenders = 4;
  constexpr int kSelectors = 8;
  const int per_sender = scaled(4000);
  const int total = kSenders * per_sender;
  std::vector<std::atomic<int>> seen(total);
  goro::run(
      [&] {
        goro::Chan<int> c1;
        goro::Chan<int> c2;
        goro::Chan<int> c3(4);
        goro::WaitGroup senders;
        goro::WaitGroup selectors;
        for (int s = 0; s < kSelectors; ++s) {
          selectors.go([&] { select_drain(c1, c2, c3, seen); });
        }
        for (int s = 0; s < kSenders; ++s) {
          senders.go([&, s] {
            for (int i = 0; i < per_sender; ++i) {
              const int v = s * per_sender + i;
              // Plain sends mixed with select sends.
              if (i % 5 == 0) {
                c1.send(v);
              } else {
                goro::select(goro::on_send(c1, v), goro::on_send(c2, v), goro::on_send(c3, v));
              }
            }
          });
        }
        senders.wait();
        c1.close();
        c2.close();
        c3.close();
        selectors.wait();
      },
      {.procs = 2, .on_fatal = goro::OnFatal::raise});
  int wrong = 0;
  for (int v = 0; v < total; ++v) {
    if (seen[v].load() != 1) ++wrong;
  }
  EXPECT_EQ(wrong, 0);
}

TEST(Select, OppositeLockOrdersNeverDeadlock) {
  const int rounds = scaled(5000);
  std::atomic<int> received{0};
  goro::run(
      [&] {
        goro::Chan<int> a;
        goro::Chan<int> b;
        goro::WaitGroup wg;
        wg.go([&] {
          for (int i = 0; i < rounds; ++i) {
            goro::select(goro::on_recv(a), goro::on_recv(b));
            ++received;
          }
        });
        wg.go([&] {
          for (int i = 0; i < rounds; ++i) {
            goro::select(goro::on_recv(b), goro::on_recv(a));
            ++received;
          }
        });
        wg.go([&] {
          for (int i = 0; i < rounds; ++i) goro::select(goro::on_send(a, i), goro::on_send(b, i));
        });
        wg.go([&] {
          for (int i = 0; i < rounds; ++i) goro::select(goro::on_send(b, i), goro::on_send(a, i));
        });
        wg.wait();
      },
      {.procs = 2, .on_fatal = goro::OnFatal::raise});
  EXPECT_EQ(received.load(), 2 * rounds);
}

TEST(Select, SendAndReceiveCasesOnBothEnds) {
  // g1 offers to send on a or receive on b; g2 offers to receive on a or send on b. Every
  // round exactly one of the two channels carries a value, and both sides agree which.
  const int rounds = scaled(2000);
  goro::run(
      [rounds] {
        goro::Chan<int> a;
        goro::Chan<int> b;
        int via_a = 0;
        int via_b = 0;
        for (int r = 0; r < rounds; ++r) {
          goro::Chan<std::pair<std::size_t, std::optional<int>>> other(1);
          goro::go([a, b, other]() mutable {
            std::optional<int> got;
            std::size_t i = goro::select(goro::on_recv(a, [&](std::optional<int> v) { got = v; }),
                                         goro::on_send(b, 2));
            other.send({i, got});
          });
          std::optional<int> got;
          std::size_t mine = goro::select(goro::on_send(a, 1),
                                          goro::on_recv(b, [&](std::optional<int> v) { got = v; }));
          auto [theirs, their_got] = *other.recv();
          ASSERT_EQ(mine, theirs) << "round " << r;
          if (mine == 0) {
            ++via_a;
            EXPECT_EQ(their_got, 1);
          } else {
            ++via_b;
            EXPECT_EQ(got, 2);
          }
        }
        EXPECT_EQ(via_a + via_b, rounds);
      },
      {.procs = 2, .on_fatal = goro::OnFatal::raise});
}

TEST(Select, TimeoutWithAfter) {
  goro::run([] {
    goro::Chan<int> never;
    const auto start = goro::Clock::now();
    std::optional<goro::Clock::time_point> fired;
    std::size_t i =
        goro::select(goro::on_recv(never),
                     goro::on_recv(goro::after(30ms),
                                   [&](std::optional<goro::Clock::time_point> t) { fired = t; }));
    const auto elapsed = goro_test::since(start);
    EXPECT_EQ(i, 1u);
    ASSERT_TRUE(fired.has_value());
    EXPECT_GE(*fired, start + 30ms);
    EXPECT_GE(elapsed, 30ms);
    EXPECT_LT(elapsed, 10s);
  });
}

TEST(Select, ReadyCaseBeatsPendingTimeout) {
  goro::run([] {
    goro::Chan<int> ch(1);
    ch.send(1);
    EXPECT_EQ(goro::select(goro::on_recv(goro::after(1h)), goro::on_recv(ch)), 1u);
  });
}

TEST(Select, ContextDone) {
  goro::run(
      [] {
        goro::Chan<int> never;
        {
          auto [ctx, cancel] = goro::with_timeout(goro::Context::background(), 20ms);
          const auto start = goro::Clock::now();
          bool closed = false;
          std::size_t i = goro::select(
              goro::on_recv(never),
              goro::on_recv(ctx.done(), [&](std::optional<std::monostate> v) { closed = !v; }));
          EXPECT_EQ(i, 1u);
          EXPECT_TRUE(closed);
          EXPECT_GE(goro_test::since(start), 20ms);
          cancel();
        }
        {
          auto [ctx, cancel] = goro::with_cancel(goro::Context::background());
          goro::go([cancel = cancel] { cancel(); });
          EXPECT_EQ(goro::select(goro::on_recv(never), goro::on_recv(ctx.done())), 1u);
          EXPECT_TRUE(ctx.cancelled());
        }
      },
      {.procs = 2});
}

TEST(Select, SameChannelInSeveralCases) {
  goro::run(
      [] {
        goro::Chan<int> ch(1);
        ch.send(1);
        const std::size_t i = goro::select(goro::on_recv(ch), goro::on_recv(ch));
        EXPECT_LT(i, 2u);
        EXPECT_EQ(ch.size(), 0u);

        // Blocking on both cases of one channel, woken by a sender.
        goro::Chan<int> unbuffered;
        goro::WaitGroup wg;
        wg.go([unbuffered]() mutable { unbuffered.send(5); });
        std::optional<int> got;
        auto take = [&](std::optional<int> v) { got = v; };
        goro::select(goro::on_recv(unbuffered, take), goro::on_recv(unbuffered, take));
        EXPECT_EQ(got, 5);
        wg.wait();

        // A select cannot pair its own send and receive cases on an unbuffered channel:
        // it waits for a partner, here a plain receiver.
        wg.go([unbuffered]() mutable { EXPECT_EQ(unbuffered.recv(), 6); });
        EXPECT_EQ(goro::select(goro::on_recv(unbuffered), goro::on_send(unbuffered, 6)), 1u);
        wg.wait();

        // Woken by close.
        wg.go([unbuffered]() mutable { unbuffered.close(); });
        got = 0;
        goro::select(goro::on_recv(unbuffered, take), goro::on_recv(unbuffered, take));
        EXPECT_EQ(got, std::nullopt);
        wg.wait();
      },
      {.procs = 2, .on_fatal = goro::OnFatal::raise});
}

TEST(Select, ManyCasesOnlyOneReady) {
  goro::run([] {
    goro::Chan<int> c0, c1, c2, c3, c4, c5, c6, c7;
    for (int ready = 0; ready < 8; ++ready) {
      goro::Chan<int>* all[] = {&c0, &c1, &c2, &c3, &c4, &c5, &c6, &c7};
      goro::WaitGroup wg;
      wg.go([ch = *all[ready], ready]() mutable { ch.send(ready); });
      std::optional<int> got;
      auto take = [&](std::optional<int> v) { got = v; };
      const std::size_t i =
          goro::select(goro::on_recv(c0, take), goro::on_recv(c1, take), goro::on_recv(c2, take),
                       goro::on_recv(c3, take), goro::on_recv(c4, take), goro::on_recv(c5, take),
                       goro::on_recv(c6, take), goro::on_recv(c7, take));
      EXPECT_EQ(i, static_cast<std::size_t>(ready));
      EXPECT_EQ(got, ready);
      wg.wait();
    }
  });
}

TEST(Select, LosingCasesStopWaiting) {
  // A select woken through one channel no longer waits on the others: a later sender on
  // another channel finds no receiver (its value is not swallowed by a stale case).
  goro::run(
      [] {
        for (int round = 0; round < 200; ++round) {
          goro::Chan<int> a;
          goro::Chan<int> b;
          goro::Chan<int> c;
          goro::Chan<std::size_t> which(1);
          goro::WaitGroup wg;
          wg.go([a, b, c, which]() mutable {
            which.send(goro::select(goro::on_recv(a), goro::on_recv(b), goro::on_recv(c)));
          });
          a.send(1);  // completes only once the select took it
          EXPECT_EQ(which.recv(), 0u);
          EXPECT_FALSE(b.try_send(2)) << "round " << round;
          EXPECT_FALSE(c.try_send(3)) << "round " << round;
          wg.wait();
        }
      },
      {.procs = 2});
}

TEST(Select, LosingSendCasesDoNotDeliver) {
  goro::run(
      [] {
        for (int round = 0; round < 200; ++round) {
          goro::Chan<int> a;
          goro::Chan<int> b;
          goro::WaitGroup wg;
          wg.go([a, b]() mutable { goro::select(goro::on_send(a, 1), goro::on_send(b, 2)); });
          EXPECT_EQ(a.recv(), 1);
          wg.wait();
          EXPECT_EQ(b.try_recv(), std::nullopt) << "round " << round;
        }
      },
      {.procs = 2});
}

}  // namespace
