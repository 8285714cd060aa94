// Runtime: run, go, goroutine ids, num_goroutines, procs, yield, blocking, dump, and the
// behaviour of parking calls outside run.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::eventually;
using goro_test::kSanitized;
using goro_test::kThreadSanitizer;

// Spawns a goroutine that reports its id and parks on gate. Deliberately an exported,
// non-inline function so that the dump can name it as the creator.
[[gnu::noinline]] void goro_test_spawn_parked(goro::Chan<int> gate, goro::Chan<std::uint64_t> id) {
  goro::go([gate, id]() mutable {
    id.send(goro::goroutine_id());
    gate.recv();
    id.send(0);  // lets the caller wait for this goroutine to finish
  });
}

namespace {

// Sets an environment variable for the lifetime of the object, restoring the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(Run, ReturnsMainsResult) {
  EXPECT_EQ(goro::run([] { return 42; }), 42);
  EXPECT_EQ(goro::run([] { return std::string("hello"); }, {.procs = 1}), "hello");
}

TEST(Run, ReturnsMoveOnlyResult) {
  std::unique_ptr<int> p = goro::run([] { return std::make_unique<int>(7); }, {.procs = 2});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

TEST(Run, VoidMain) {
  bool ran = false;
  static_assert(std::is_void_v<decltype(goro::run([] {}))>);
  goro::run([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(Run, CanRunAgainAfterReturn) {
  for (int round = 0; round < 5; ++round) {
    const int procs = round % 2 + 1;
    int sum = goro::run(
        [] {
          goro::Chan<int> ch(10);
          for (int i = 1; i <= 10; ++i) goro::go([ch, i]() mutable { ch.send(i); });
          int s = 0;
          for (int i = 0; i < 10; ++i) s += *ch.recv();
          return s;
        },
        {.procs = procs});
    EXPECT_EQ(sum, 55) << "round " << round;
  }
}

TEST(Go, ArgumentsAreDecayCopied) {
  goro::run(
      [] {
        goro::Chan<std::string> out(1);
        std::string s = "original";
        goro::go([](std::string v, goro::Chan<std::string> o) { o.send(v); }, s, out);
        s = "changed";  // the goroutine holds its own copy
        EXPECT_EQ(out.recv(), "original");

        // A reference parameter still gets a copy, never the caller's variable.
        int n = 1;
        goro::Chan<const int*> addr(1);
        goro::go([](const int& v, goro::Chan<const int*> o) { o.send(&v); }, n, addr);
        EXPECT_NE(*addr.recv(), &n);

        // Move-only arguments are moved in.
        goro::Chan<int> got(1);
        goro::go([](std::unique_ptr<int> p, goro::Chan<int> o) { o.send(*p); },
                 std::make_unique<int>(9), got);
        EXPECT_EQ(got.recv(), 9);

        // std::ref opts into sharing, as with std::thread.
        int shared = 0;
        goro::Chan<int> done(1);
        goro::go(
            [](int& v, goro::Chan<int> d) {
              v = 11;
              d.send(0);
            },
            std::ref(shared), done);
        done.recv();
        EXPECT_EQ(shared, 11);
      },
      {.procs = 2});
}

TEST(Go, FunctionPointerAndPlainCall) {
  static std::atomic<int> hits;
  hits = 0;
  struct Fn {
    static void bump(goro::Chan<int> ch) {
      hits.fetch_add(1);
      ch.send(1);
    }
  };
  goro::run([] {
    goro::Chan<int> ch(2);
    goro::go(&Fn::bump, ch);
    goro::go(Fn::bump, ch);
    ch.recv();
    ch.recv();
  });
  EXPECT_EQ(hits.load(), 2);
}

TEST(GoroutineId, MainIsOneAndIdsAreUnique) {
  EXPECT_EQ(goro::goroutine_id(), 0u);  // not on a goroutine
  goro::run(
      [] {
        EXPECT_EQ(goro::goroutine_id(), 1u);
        constexpr int kN = 200;
        goro::Chan<std::uint64_t> ids(kN);
        goro::WaitGroup wg;
        for (int i = 0; i < kN; ++i) {
          wg.go([ids]() mutable {
            const std::uint64_t before = goro::goroutine_id();
            goro::yield();
            // Stable across a switch, possibly onto another worker.
            EXPECT_EQ(goro::goroutine_id(), before);
            ids.send(before);
          });
          // Finished goroutines must not lend their ids to new ones.
          if (i % 10 == 0) wg.wait();
        }
        wg.wait();
        ids.close();
        std::set<std::uint64_t> seen;
        for (std::uint64_t id : ids) {
          EXPECT_NE(id, 1u);
          EXPECT_NE(id, 0u);
          EXPECT_TRUE(seen.insert(id).second) << "duplicate id " << id;
        }
        EXPECT_EQ(seen.size(), static_cast<std::size_t>(kN));
        EXPECT_EQ(goro::goroutine_id(), 1u);
      },
      {.procs = 2});
}

TEST(NumGoroutines, CountsMainParkedAndBlocking) {
  goro::run(
      [] {
        EXPECT_EQ(goro::num_goroutines(), 1u);
        constexpr int kN = 10;
        goro::Chan<int> started(kN);
        goro::Chan<int> release;
        goro::WaitGroup wg;
        for (int i = 0; i < kN; ++i) {
          wg.go([=]() mutable {
            started.send(i);
            release.recv();
          });
        }
        for (int i = 0; i < kN; ++i) started.recv();
        EXPECT_EQ(goro::num_goroutines(), static_cast<std::size_t>(kN + 1));

        // A goroutine inside blocking() is still a live goroutine.
        std::atomic<bool> in_blocking{false};
        std::atomic<bool> let_go{false};
        wg.go([&] {
          goro::blocking([&] {
            in_blocking = true;
            while (!let_go) std::this_thread::yield();
          });
        });
        EXPECT_TRUE(eventually([&] { return in_blocking.load(); }));
        EXPECT_EQ(goro::num_goroutines(), static_cast<std::size_t>(kN + 2));

        let_go = true;
        release.close();
        wg.wait();
        EXPECT_TRUE(eventually([] { return goro::num_goroutines() == 1; }))
            << goro::num_goroutines();
      },
      {.procs = 2});
}

TEST(Procs, HonoursOptions) {
  EXPECT_EQ(goro::procs(), 0);  // outside run
  EXPECT_EQ(goro::run([] { return goro::procs(); }, {.procs = 1}), 1);
  EXPECT_EQ(goro::run([] { return goro::procs(); }, {.procs = 3}), 3);
}

TEST(Procs, HonoursEnvironment) {
  {
    ScopedEnv env("GORO_MAXPROCS", "3");
    EXPECT_EQ(goro::run([] { return goro::procs(); }), 3);
    // Explicit options beat the environment.
    EXPECT_EQ(goro::run([] { return goro::procs(); }, {.procs = 2}), 2);
  }
  {
    ScopedEnv env("GORO_MAXPROCS", nullptr);
    const int hw = static_cast<int>(std::thread::hardware_concurrency());
    const int p = goro::run([] { return goro::procs(); });
    EXPECT_GE(p, 1);
    if (hw > 0) {
      EXPECT_EQ(p, hw);
    }
  }
}

TEST(Yield, LetsOtherGoroutinesRunOnOneProc) {
  goro::run(
      [] {
        std::atomic<bool> flag{false};
        goro::go([&] { flag = true; });
        // With one worker and cooperative scheduling the goroutine can only run if
        // yield() really gives up the worker.
        for (int i = 0; i < 100000 && !flag; ++i) goro::yield();
        EXPECT_TRUE(flag.load());
      },
      {.procs = 1});
}

TEST(Yield, PingPongOrderOnOneProc) {
  // Two goroutines that yield to each other on a single worker interleave.
  goro::run(
      [] {
        std::vector<int> trace;
        goro::WaitGroup wg;
        std::atomic<int> turns{0};
        for (int who = 0; who < 2; ++who) {
          wg.go([&, who] {
            for (int i = 0; i < 3; ++i) {
              trace.push_back(who);
              ++turns;
              goro::yield();
            }
          });
        }
        wg.wait();
        ASSERT_EQ(trace.size(), 6u);
        EXPECT_EQ(turns.load(), 6);
        // Neither goroutine ran all its steps in one go.
        EXPECT_NE(trace, (std::vector<int>{0, 0, 0, 1, 1, 1}));
        EXPECT_NE(trace, (std::vector<int>{1, 1, 1, 0, 0, 0}));
      },
      {.procs = 1});
}

TEST(OutsideRun, ParkingCallsThrowLogicError) {
  ASSERT_EQ(goro::goroutine_id(), 0u);
  EXPECT_THROW(goro::go([] {}), std::logic_error);
  EXPECT_THROW(goro::sleep(1ms), std::logic_error);
  EXPECT_THROW(goro::blocking([] { return 1; }), std::logic_error);
  {
    goro::WaitGroup wg;  // counter 0: would not block, still a parking call
    EXPECT_THROW(wg.wait(), std::logic_error);
  }
  goro::Chan<int> ch(4);
  EXPECT_THROW(ch.send(1), std::logic_error);  // room in the buffer: still throws
  ASSERT_TRUE(ch.try_send(2));
  EXPECT_THROW(ch.recv(), std::logic_error);  // a value is ready: still throws
  EXPECT_EQ(ch.size(), 1u);
  goro::Chan<int> unbuffered;
  EXPECT_THROW(unbuffered.send(1), std::logic_error);
  EXPECT_THROW(unbuffered.recv(), std::logic_error);
  EXPECT_THROW(goro::select(goro::on_recv(ch)), std::logic_error);
}

TEST(OutsideRun, NonParkingChannelOpsWork) {
  goro::Chan<int> ch(2);
  EXPECT_TRUE(ch.try_send(1));
  EXPECT_TRUE(ch.try_send(2));
  EXPECT_FALSE(ch.try_send(3));
  EXPECT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch.capacity(), 2u);
  EXPECT_EQ(ch.try_recv(), 1);
  ch.close();
  EXPECT_EQ(ch.try_recv(), 2);
  EXPECT_EQ(ch.try_recv(), std::nullopt);
  EXPECT_THROW(ch.try_send(4), goro::ClosedChannel);
}

TEST(Blocking, ReturnsValueFromAnotherThread) {
  const auto [value, same_thread] = goro::run(
      [] {
        const auto here = std::this_thread::get_id();
        std::thread::id there;
        int v = goro::blocking([&] {
          there = std::this_thread::get_id();
          return 5;
        });
        return std::pair{v, here == there};
      },
      {.procs = 2});
  EXPECT_EQ(value, 5);
  EXPECT_FALSE(same_thread);
}

TEST(Blocking, VoidAndMoveOnly) {
  goro::run([] {
    int x = 0;
    goro::blocking([&] { x = 3; });
    EXPECT_EQ(x, 3);
    auto p = goro::blocking([] { return std::make_unique<int>(4); });
    EXPECT_EQ(*p, 4);
  });
}

TEST(Blocking, RethrowsException) {
  std::string what = goro::run([] {
    try {
      goro::blocking([]() -> int { throw std::runtime_error("from helper"); });
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("not thrown");
  });
  EXPECT_EQ(what, "from helper");
}

TEST(Blocking, OtherGoroutinesKeepRunningOnOneProc) {
  // The worker is not held by a goroutine in blocking(): another goroutine runs meanwhile
  // and is the one that lets the blocking call finish.
  goro::run(
      [] {
        std::atomic<bool> release{false};
        goro::Chan<int> result(1);
        goro::go([&release, result]() mutable {
          result.send(goro::blocking([&] {
            while (!release) std::this_thread::yield();
            return 8;
          }));
        });
        goro::go([&] { release = true; });
        EXPECT_EQ(result.recv(), 8);
      },
      {.procs = 1, .on_fatal = goro::OnFatal::raise});
}

TEST(Blocking, GoroutineInBlockingIsNotDeadlocked) {
  // Main waits on a channel; the only other goroutine is in blocking(). Nothing is runnable
  // for a while, but that is not a deadlock.
  EXPECT_NO_THROW({
    int v = goro::run(
        [] {
          goro::Chan<int> ch(1);
          goro::go([ch]() mutable {
            ch.send(goro::blocking([] {
              std::this_thread::sleep_for(150ms);  // stands in for a blocking syscall
              return 1;
            }));
          });
          return *ch.recv();
        },
        {.procs = 2, .on_fatal = goro::OnFatal::raise});
    EXPECT_EQ(v, 1);
  });
}

TEST(Blocking, ManyConcurrentCalls) {
  constexpr int kN = 32;
  goro::run(
      [] {
        goro::Chan<int> results(kN);
        goro::WaitGroup wg;
        for (int i = 0; i < kN; ++i) {
          wg.go([results, i]() mutable {
            results.send(goro::blocking([i] {
              std::this_thread::sleep_for(5ms);  // stands in for a blocking syscall
              return i * i;
            }));
          });
        }
        wg.wait();
        results.close();
        long sum = 0;
        for (int v : results) sum += v;
        long expected = 0;
        for (int i = 0; i < kN; ++i) expected += i * i;
        EXPECT_EQ(sum, expected);
      },
      {.procs = 2, .on_fatal = goro::OnFatal::raise});
}

TEST(Go, GoroutinesSpawnGoroutines) {
  // A binary tree of goroutines; each node sums its subtree through channels.
  struct Tree {
    static void node(int depth, goro::Chan<long> out) {
      if (depth == 0) {
        out.send(1);
        return;
      }
      goro::Chan<long> kids(2);
      goro::go(&Tree::node, depth - 1, kids);
      goro::go(&Tree::node, depth - 1, kids);
      const long total = 1 + *kids.recv() + *kids.recv();
      out.send(total);
    }
  };
  static constexpr int kDepth = goro_test::kSanitized ? 8 : 11;
  const long nodes = goro::run(
      [] {
        goro::Chan<long> out(1);
        goro::go(&Tree::node, kDepth, out);
        return *out.recv();
      },
      {.procs = 2});
  EXPECT_EQ(nodes, (1L << (kDepth + 1)) - 1);
}

TEST(Exceptions, CaughtExceptionStateIsPerGoroutine) {
  // Goroutine A parks inside a catch block; goroutine B then catches its own exception and
  // parks inside its catch block (on the same worker when procs == 1). A resumes first:
  // `throw;` and std::current_exception() must see A's exception, not B's (the C++ runtime
  // keeps the stack of caught exceptions per thread).
  for (int procs : {1, 2}) {
    std::string a_saw;
    std::string b_saw;
    std::string a_current;
    goro::run(
        [&] {
          goro::Chan<int> a_in(1);
          goro::Chan<int> b_in(1);
          goro::Chan<int> a_done(1);
          goro::Chan<int> b_done(1);
          goro::Chan<int> a_go;
          goro::Chan<int> b_go;
          goro::WaitGroup wg;
          auto catcher = [&wg](const char* name, goro::Chan<int> in, goro::Chan<int> go_on,
                               goro::Chan<int> done, std::string& saw, std::string* current) {
            wg.go([name, in, go_on, done, &saw, current]() mutable {
              try {
                throw std::runtime_error(name);
              } catch (...) {
                in.send(0);
                go_on.recv();  // park while handling the exception
                if (current) {
                  try {
                    std::rethrow_exception(std::current_exception());
                  } catch (const std::runtime_error& e) {
                    *current = e.what();
                  }
                }
                try {
                  throw;
                } catch (const std::runtime_error& e) {
                  saw = e.what();
                }
              }
              done.send(0);
            });
          };
          catcher("A", a_in, a_go, a_done, a_saw, &a_current);
          a_in.recv();
          catcher("B", b_in, b_go, b_done, b_saw, nullptr);
          b_in.recv();
          a_go.send(0);
          a_done.recv();  // A finishes its handler while B is still inside its own
          b_go.send(0);
          b_done.recv();
          wg.wait();
        },
        {.procs = procs});
    EXPECT_EQ(a_current, "A") << "procs " << procs;
    EXPECT_EQ(a_saw, "A") << "procs " << procs;
    EXPECT_EQ(b_saw, "B") << "procs " << procs;
  }
}

TEST(Exceptions, UncaughtExceptionsIsPerGoroutine) {
  // A goroutine parks in a destructor that runs during stack unwinding; other goroutines
  // on the same worker are not unwinding anything.
  for (int procs : {1, 2}) {
    int during_unwind = -1;
    int other = -1;
    int after_catch = -1;
    goro::run(
        [&] {
          goro::Chan<int> parked(1);
          goro::Chan<int> resume;
          goro::WaitGroup wg;
          wg.go([&, parked, resume]() mutable {
            struct ParkOnUnwind {
              goro::Chan<int>& parked;
              goro::Chan<int>& resume;
              int& seen;
              ~ParkOnUnwind() {
                seen = std::uncaught_exceptions();
                parked.send(0);
                resume.recv();
              }
            };
            try {
              ParkOnUnwind guard{parked, resume, during_unwind};
              throw std::runtime_error("unwinding");
            } catch (const std::runtime_error&) {
            }
            after_catch = std::uncaught_exceptions();
          });
          parked.recv();
          // Another goroutine (on the same worker when procs == 1) is not unwinding.
          goro::Chan<int> seen(1);
          wg.go([&other, seen]() mutable {
            other = std::uncaught_exceptions();
            seen.send(0);
          });
          seen.recv();
          EXPECT_EQ(std::uncaught_exceptions(), 0);
          resume.send(0);
          wg.wait();
        },
        {.procs = procs});
    EXPECT_EQ(during_unwind, 1) << "procs " << procs;
    EXPECT_EQ(other, 0) << "procs " << procs;
    EXPECT_EQ(after_catch, 0) << "procs " << procs;
  }
}

TEST(Exceptions, ThrowAndCatchAcrossParks) {
  // Exceptions thrown after a goroutine migrated between workers are caught normally.
  std::atomic<int> caught{0};
  goro::run(
      [&] {
        goro::Chan<int> ping(4);
        goro::WaitGroup wg;
        for (int g = 0; g < 8; ++g) {
          wg.go([&, ping]() mutable {
            for (int i = 0; i < 50; ++i) {
              try {
                ping.send(i);
                ping.recv();
                goro::yield();
                throw std::runtime_error("x");
              } catch (const std::runtime_error&) {
                ++caught;
              }
            }
          });
        }
        wg.wait();
      },
      {.procs = 2});
  EXPECT_EQ(caught.load(), 8 * 50);
}

TEST(Run, AbandonedGoroutinesAreNeverResumed) {
  // A goroutine still parked when main returns is never resumed, even when the channel it
  // waits on (owned here, outside run) is used after run returned.
  goro::Chan<int> ch(nullptr);
  std::atomic<bool> resumed{false};
  goro::run(
      [&] {
        ch = goro::Chan<int>();
        goro::Chan<int> parked(1);
        goro::go([&] {  // by reference only: nothing of it is leaked when abandoned
          parked.send(0);
          ch.recv();
          resumed = true;
        });
        parked.recv();
        goro::yield();
      },
      {.procs = 2});
  EXPECT_FALSE(ch.try_send(1));  // nobody is receiving any more
  ch.close();
  std::this_thread::sleep_for(20ms);  // not synchronisation: nothing may run at all
  EXPECT_FALSE(resumed.load());
}

TEST(Scale, HundredThousandParkedGoroutines) {
  const int n = kThreadSanitizer ? 1000 : kSanitized ? 10000 : 100000;
  goro::run(
      [n] {
        goro::Chan<int> gate;
        goro::WaitGroup wg;
        std::atomic<int> started{0};
        std::atomic<int> released{0};
        for (int i = 0; i < n; ++i) {
          wg.go([&] {
            started.fetch_add(1, std::memory_order_relaxed);
            if (!gate.recv()) released.fetch_add(1, std::memory_order_relaxed);
          });
        }
        EXPECT_TRUE(eventually([&] { return started.load() == n; }, 60s)) << started.load();
        EXPECT_GE(goro::num_goroutines(), static_cast<std::size_t>(n) + 1);
        EXPECT_EQ(released.load(), 0);
        gate.close();
        wg.wait();
        EXPECT_EQ(released.load(), n);
      },
      {.procs = 2});
}

TEST(Dump, ShowsGoroutinesAndWaitReasons) {
  goro::run(
      [] {
        goro::Chan<int> never;
        goro::Chan<int> full(1);
        full.send(0);
        goro::Mutex mu;
        mu.lock();
        goro::WaitGroup blocker;
        blocker.add(1);
        // Each goroutine reports (which, id) and then blocks in its own way.
        goro::Chan<std::pair<int, std::uint64_t>> ids(8);
        goro::WaitGroup wg;
        auto spawn = [&](int which, auto body) {
          wg.go([&ids, which, body]() mutable {
            ids.send({which, goro::goroutine_id()});
            body();
          });
        };
        spawn(0, [&] { never.recv(); });
        spawn(1, [&] {
          try {
            full.send(1);
          } catch (const goro::ClosedChannel&) {
          }
        });
        spawn(2, [&] { goro::select(goro::on_recv(never), goro::on_recv(never)); });
        spawn(3, [&] {
          mu.lock();
          mu.unlock();
        });
        spawn(4, [&] { blocker.wait(); });
        spawn(5, [] { goro::sleep(1s); });
        const char* reasons[] = {"chan receive",    "chan send",           "select",
                                 "sync.Mutex.Lock", "sync.WaitGroup.Wait", "sleep"};
        std::string expected[6];
        for (int i = 0; i < 6; ++i) {
          auto [which, id] = *ids.recv();
          expected[which] = "goroutine " + std::to_string(id) + " [" + reasons[which];
        }

        std::string text;
        const bool all = eventually([&] {
          std::ostringstream out;
          goro::dump(out);
          text = out.str();
          for (const std::string& e : expected) {
            if (text.find(e) == std::string::npos) return false;
          }
          return true;
        });
        EXPECT_TRUE(all) << text;
        for (const std::string& e : expected) {
          EXPECT_NE(text.find(e), std::string::npos) << "missing '" << e << "' in\n" << text;
        }
        EXPECT_NE(text.find("goroutine 1 [running"), std::string::npos) << text;

        // Release everyone (nothing is left behind for leak checkers).
        never.close();
        full.close();
        mu.unlock();
        blocker.done();
        wg.wait();
      },
      {.procs = 2});
}

TEST(Dump, NamesTheFunctionThatCalledGo) {
  goro::run(
      [] {
        goro::Chan<int> gate;
        goro::Chan<std::uint64_t> id(1);
        goro_test_spawn_parked(gate, id);
        const std::string prefix = "goroutine " + std::to_string(*id.recv()) + " [";
        std::string line;
        EXPECT_TRUE(eventually([&] {
          std::ostringstream out;
          goro::dump(out);
          const std::string text = out.str();
          const std::size_t at = text.find(prefix);
          if (at == std::string::npos) return false;
          line = text.substr(at, text.find('\n', at) - at);
          return line.find("[chan receive") != std::string::npos;
        })) << line;
        // Exported (-rdynamic) function names are available even without debug info.
        EXPECT_NE(line.find("goro_test_spawn_parked"), std::string::npos) << line;
        gate.close();
        id.recv();
      },
      {.procs = 2});
}

}  // namespace
