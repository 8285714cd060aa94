// Context (cancel, timeout, deadline, propagation) and ErrGroup (errors, cancellation,
// concurrency limits).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro::Clock;
using goro_test::since;

namespace {

// The what() of the exception in err, or "" when there is none.
std::string err_text(const std::exception_ptr& err) {
  if (!err) return "";
  try {
    std::rethrow_exception(err);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "<not a std::exception>";
  }
}

bool is_canceled(const std::exception_ptr& err) {
  if (!err) return false;
  try {
    std::rethrow_exception(err);
  } catch (const goro::Canceled&) {
    return true;
  } catch (...) {
    return false;
  }
}

bool is_deadline_exceeded(const std::exception_ptr& err) {
  if (!err) return false;
  try {
    std::rethrow_exception(err);
  } catch (const goro::DeadlineExceeded&) {
    return true;
  } catch (...) {
    return false;
  }
}

bool is_done(const goro::Context& ctx) {
  return goro::select(goro::on_recv(ctx.done()), goro::on_default()) == 0;
}

TEST(Context, BackgroundIsNeverDone) {
  goro::run([] {
    goro::Context bg = goro::Context::background();
    EXPECT_FALSE(bg.cancelled());
    EXPECT_EQ(bg.err(), nullptr);
    EXPECT_EQ(bg.deadline(), std::nullopt);
    EXPECT_FALSE(static_cast<bool>(bg.done()));  // a nil channel
    EXPECT_FALSE(is_done(bg));
    EXPECT_EQ(goro::select(goro::on_recv(bg.done()), goro::on_recv(goro::after(20ms))), 1u);
  });
}

TEST(Context, Cancel) {
  goro::run([] {
    auto [ctx, cancel] = goro::with_cancel(goro::Context::background());
    EXPECT_FALSE(ctx.cancelled());
    EXPECT_EQ(ctx.err(), nullptr);
    EXPECT_FALSE(is_done(ctx));
    EXPECT_EQ(ctx.deadline(), std::nullopt);
    cancel();
    EXPECT_TRUE(ctx.cancelled());
    EXPECT_EQ(ctx.done().recv(), std::nullopt);  // closed
    EXPECT_TRUE(is_canceled(ctx.err()));
    EXPECT_EQ(err_text(ctx.err()), "context canceled");
    cancel();  // idempotent
    EXPECT_TRUE(is_canceled(ctx.err()));
  });
}

TEST(Context, CancelFromAnotherGoroutineWakesWaiters) {
  goro::run(
      [] {
        auto [ctx, cancel] = goro::with_cancel(goro::Context::background());
        goro::WaitGroup wg;
        std::atomic<int> woke{0};
        for (int i = 0; i < 10; ++i) {
          wg.go([&, ctx = ctx] {
            ctx.done().recv();
            ++woke;
          });
        }
        goro::go([cancel = cancel] { cancel(); });
        wg.wait();
        EXPECT_EQ(woke.load(), 10);
      },
      {.procs = 2});
}

TEST(Context, Timeout) {
  goro::run([] {
    const auto before = Clock::now();
    auto [ctx, cancel] = goro::with_timeout(goro::Context::background(), 30ms);
    const auto after = Clock::now();
    ASSERT_TRUE(ctx.deadline().has_value());
    EXPECT_GE(*ctx.deadline(), before + 30ms);
    EXPECT_LE(*ctx.deadline(), after + 30ms);
    EXPECT_FALSE(ctx.cancelled());
    ctx.done().recv();
    EXPECT_GE(since(before), 30ms);
    EXPECT_TRUE(ctx.cancelled());
    EXPECT_TRUE(is_deadline_exceeded(ctx.err()));
    EXPECT_EQ(err_text(ctx.err()), "context deadline exceeded");
    cancel();  // cancelling after the deadline keeps DeadlineExceeded
    EXPECT_TRUE(is_deadline_exceeded(ctx.err()));
  });
}

TEST(Context, CancelBeforeTimeout) {
  goro::run([] {
    auto [ctx, cancel] = goro::with_timeout(goro::Context::background(), 1h);
    cancel();
    EXPECT_TRUE(ctx.cancelled());
    EXPECT_TRUE(is_canceled(ctx.err()));
    EXPECT_TRUE(ctx.deadline().has_value());
  });
}

TEST(Context, Deadline) {
  goro::run([] {
    const auto when = Clock::now() + 25ms;
    auto [ctx, cancel] = goro::with_deadline(goro::Context::background(), when);
    EXPECT_EQ(ctx.deadline(), when);
    ctx.done().recv();
    EXPECT_GE(Clock::now(), when);
    EXPECT_TRUE(is_deadline_exceeded(ctx.err()));
    cancel();
  });
}

TEST(Context, PastDeadlineIsDoneAtOnce) {
  goro::run([] {
    auto [ctx, cancel] = goro::with_deadline(goro::Context::background(), Clock::now() - 1s);
    EXPECT_EQ(goro::select(goro::on_recv(ctx.done()), goro::on_recv(goro::after(5s))), 0u);
    EXPECT_TRUE(is_deadline_exceeded(ctx.err()));
    auto [ctx2, cancel2] = goro::with_timeout(goro::Context::background(), -1s);
    EXPECT_EQ(goro::select(goro::on_recv(ctx2.done()), goro::on_recv(goro::after(5s))), 0u);
    EXPECT_TRUE(is_deadline_exceeded(ctx2.err()));
    cancel();
    cancel2();
  });
}

TEST(Context, ChildrenAreCancelledByParent) {
  goro::run([] {
    auto [parent, cancel_parent] = goro::with_cancel(goro::Context::background());
    auto [child, cancel_child] = goro::with_cancel(parent);
    auto [grandchild, cancel_grandchild] = goro::with_timeout(child, 1h);
    EXPECT_FALSE(grandchild.cancelled());
    cancel_parent();
    EXPECT_TRUE(parent.cancelled());
    EXPECT_EQ(child.done().recv(), std::nullopt);
    EXPECT_EQ(grandchild.done().recv(), std::nullopt);
    EXPECT_TRUE(child.cancelled());
    EXPECT_TRUE(grandchild.cancelled());
    EXPECT_TRUE(is_canceled(child.err()));
    EXPECT_TRUE(is_canceled(grandchild.err()));
    cancel_child();
    cancel_grandchild();
  });
}

TEST(Context, CancellingChildLeavesParent) {
  goro::run([] {
    auto [parent, cancel_parent] = goro::with_cancel(goro::Context::background());
    auto [child, cancel_child] = goro::with_cancel(parent);
    auto [sibling, cancel_sibling] = goro::with_cancel(parent);
    cancel_child();
    EXPECT_TRUE(child.cancelled());
    EXPECT_FALSE(parent.cancelled());
    EXPECT_FALSE(sibling.cancelled());
    EXPECT_FALSE(is_done(parent));
    EXPECT_EQ(parent.err(), nullptr);
    cancel_parent();
    EXPECT_TRUE(sibling.cancelled());
    cancel_sibling();
  });
}

TEST(Context, ParentDeadlineReachesChild) {
  goro::run([] {
    auto [parent, cancel_parent] = goro::with_timeout(goro::Context::background(), 20ms);
    auto [child, cancel_child] = goro::with_cancel(parent);
    auto [late, cancel_late] = goro::with_timeout(parent, 1h);
    // A child never outlives its parent's deadline.
    ASSERT_TRUE(late.deadline().has_value());
    EXPECT_EQ(late.deadline(), parent.deadline());
    EXPECT_EQ(child.deadline(), parent.deadline());
    child.done().recv();
    EXPECT_TRUE(is_deadline_exceeded(child.err()));
    late.done().recv();
    EXPECT_TRUE(is_deadline_exceeded(late.err()));
    cancel_parent();
    cancel_child();
    cancel_late();
  });
}

TEST(Context, DerivedFromCancelledParentIsDone) {
  goro::run([] {
    auto [parent, cancel_parent] = goro::with_cancel(goro::Context::background());
    cancel_parent();
    auto [child, cancel_child] = goro::with_cancel(parent);
    EXPECT_TRUE(child.cancelled());
    EXPECT_TRUE(is_done(child));
    EXPECT_TRUE(is_canceled(child.err()));
    cancel_child();
  });
}

// ---------------------------------------------------------------- ErrGroup

TEST(ErrGroup, AllSucceed) {
  std::atomic<int> ran{0};
  goro::run(
      [&] {
        goro::ErrGroup g;
        for (int i = 0; i < 20; ++i) g.go([&] { ++ran; });
        EXPECT_NO_THROW(g.wait());
      },
      {.procs = 2});
  EXPECT_EQ(ran.load(), 20);
}

TEST(ErrGroup, WaitRethrowsFirstError) {
  goro::run(
      [] {
        goro::ErrGroup g;
        goro::Context ctx = g.context();
        std::atomic<int> succeeded{0};
        for (int i = 0; i < 5; ++i) g.go([&] { ++succeeded; });
        g.go([] { throw std::runtime_error("first"); });
        // Fails only after the group was cancelled, i.e. after the first failure.
        g.go([ctx] {
          ctx.done().recv();
          throw std::logic_error("second");
        });
        try {
          g.wait();
          ADD_FAILURE() << "wait did not throw";
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "first");
        } catch (const std::exception& e) {
          ADD_FAILURE() << "wrong exception: " << e.what();
        }
        EXPECT_EQ(succeeded.load(), 5);
      },
      {.procs = 2});
}

TEST(ErrGroup, ContextCancelledAtFirstFailure) {
  goro::run(
      [] {
        goro::ErrGroup g(goro::Context::background());
        goro::Context ctx = g.context();
        EXPECT_FALSE(ctx.cancelled());
        std::atomic<bool> saw_cancel{false};
        g.go([ctx, &saw_cancel] {
          ctx.done().recv();  // blocks until the other goroutine fails
          saw_cancel = true;
        });
        g.go([] { throw std::runtime_error("boom"); });
        EXPECT_THROW(g.wait(), std::runtime_error);
        EXPECT_TRUE(saw_cancel.load());
        EXPECT_TRUE(ctx.cancelled());
        EXPECT_TRUE(is_canceled(ctx.err()));
      },
      {.procs = 2, .on_fatal = goro::OnFatal::raise});
}

TEST(ErrGroup, ContextCancelledAfterWait) {
  goro::run([] {
    goro::ErrGroup g;
    goro::Context ctx = g.context();
    g.go([] {});
    g.go([] {});
    g.wait();
    EXPECT_TRUE(ctx.cancelled());
    EXPECT_TRUE(g.context().cancelled());
  });
}

TEST(ErrGroup, ParentCancellationReachesGroup) {
  goro::run([] {
    auto [parent, cancel] = goro::with_cancel(goro::Context::background());
    goro::ErrGroup g(parent);
    goro::Context ctx = g.context();
    g.go([ctx] {
      ctx.done().recv();
      throw goro::Canceled();
    });
    cancel();
    EXPECT_THROW(g.wait(), goro::Canceled);
    EXPECT_FALSE(goro::Context::background().cancelled());
  });
}

TEST(ErrGroup, SetLimitBoundsConcurrency) {
  constexpr int kLimit = 3;
  std::atomic<int> active{0};
  std::atomic<int> max_active{0};
  std::atomic<int> ran{0};
  goro::run(
      [&] {
        goro::ErrGroup g;
        g.set_limit(kLimit);
        for (int i = 0; i < 30; ++i) {
          g.go([&] {
            const int now = ++active;
            int seen = max_active.load();
            while (now > seen && !max_active.compare_exchange_weak(seen, now)) {
            }
            for (int k = 0; k < 5; ++k) goro::yield();
            --active;
            ++ran;
          });
        }
        g.wait();
      },
      {.procs = 2});
  EXPECT_EQ(ran.load(), 30);
  EXPECT_GE(max_active.load(), 1);
  EXPECT_LE(max_active.load(), kLimit);
}

TEST(ErrGroup, GoBlocksPastTheLimit) {
  goro::run(
      [] {
        goro::ErrGroup g;
        g.set_limit(1);
        goro::Chan<int> release;
        g.go([release]() mutable { release.recv(); });
        std::atomic<bool> second_started{false};
        std::atomic<bool> go_returned{false};
        goro::WaitGroup spawner;
        spawner.go([&] {
          g.go([&] { second_started = true; });
          go_returned = true;
        });
        for (int i = 0; i < 50; ++i) goro::yield();
        EXPECT_FALSE(go_returned.load());  // the slot is still taken
        EXPECT_FALSE(second_started.load());
        release.close();
        spawner.wait();
        g.wait();
        EXPECT_TRUE(go_returned.load());
        EXPECT_TRUE(second_started.load());
      },
      {.procs = 1, .on_fatal = goro::OnFatal::raise});
}

TEST(ErrGroup, NegativeLimitMeansNoLimit) {
  constexpr int kN = 16;
  goro::run(
      [] {
        goro::ErrGroup g;
        g.set_limit(2);
        g.set_limit(-1);
        goro::Chan<int> in(kN);
        goro::Chan<int> release;
        // All of them must be running at once for this to finish (a limit would deadlock,
        // which raises instead of hanging).
        for (int i = 0; i < kN; ++i) {
          g.go([in, release]() mutable {
            in.send(0);
            release.recv();
          });
        }
        for (int i = 0; i < kN; ++i) in.recv();
        release.close();
        g.wait();
        SUCCEED();
      },
      {.procs = 2, .on_fatal = goro::OnFatal::raise});
}

TEST(ErrGroup, NonStdExceptionIsRethrown) {
  goro::run([] {
    goro::ErrGroup g;
    g.go([] { throw 7; });
    try {
      g.wait();
      ADD_FAILURE() << "no exception";
    } catch (int v) {
      EXPECT_EQ(v, 7);
    }
  });
}

TEST(Context, ConcurrentChildrenAndParentCancel) {
  // Children are created and cancelled on several workers while the parent is cancelled.
  // Once the parent's cancel() has returned, every child that exists is done.
  goro::run(
      [] {
        auto [parent, cancel_parent] = goro::with_cancel(goro::Context::background());
        std::atomic<bool> parent_cancelled{false};
        std::atomic<int> not_done{0};
        std::atomic<int> created{0};
        goro::WaitGroup wg;
        for (int g = 0; g < 8; ++g) {
          wg.go([&, parent = parent] {
            std::vector<goro::Context> kept;
            std::vector<std::function<void()>> cancels;
            for (int i = 0; !parent_cancelled || i < 50; ++i) {
              auto [child, cancel] = i % 2 ? goro::with_cancel(parent)
                                           : goro::with_timeout(parent, std::chrono::hours(1));
              ++created;
              if (i % 3 == 0) {
                cancel();  // cancelled on its own, then dropped
              } else {
                kept.push_back(child);
                cancels.push_back(cancel);
              }
              if (i % 16 == 0) goro::yield();
            }
            // The loop saw parent_cancelled, which is set after cancel_parent() returned.
            for (const goro::Context& c : kept) {
              if (!c.cancelled() || !is_done(c)) ++not_done;
            }
            for (auto& c : cancels) c();
          });
        }
        EXPECT_TRUE(goro_test::eventually([&] { return created.load() > 400; }));
        cancel_parent();
        parent_cancelled = true;
        wg.wait();
        EXPECT_EQ(not_done.load(), 0);
      },
      {.procs = 2});
}

}  // namespace
