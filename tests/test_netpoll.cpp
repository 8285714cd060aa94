// The network poller's internal interface (src/netpoll.hpp), on pipes and socket pairs:
// readiness without lost wake-ups, deadlines (past, moved while waiting, cleared), eviction,
// fd reuse, and I/O waits in the deadlock detector. goro::net is tested on top of it in
// test_net.cpp.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "goro/goro.hpp"
#include "netpoll.hpp"
#include "park.hpp"

namespace goro::detail {
namespace {

using namespace std::chrono_literals;

struct Pipe {
  int r = -1;
  int w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
};

std::int64_t in_ns(std::chrono::nanoseconds d) { return monotonic_ns() + d.count(); }

TEST(Netpoll, WaitFdWakesWhenAnotherGoroutineWrites) {
  goro::run([] {
    Pipe p;
    goro::Chan<int> started;
    goro::go([&] {
      started.send(1);
      char c = 'x';
      EXPECT_EQ(write(p.w, &c, 1), 1);
    });
    EXPECT_EQ(started.recv(), 1);
    EXPECT_EQ(poll_wait_fd(p.r, PollMode::read, 0), PollResult::ready);
    char c = 0;
    EXPECT_EQ(read(p.r, &c, 1), 1);
    EXPECT_EQ(c, 'x');
  });
}

TEST(Netpoll, ManyRoundTripsLoseNoWakeUp) {
  for (int procs : {1, 2}) {
    goro::run(
        [] {
          int sv[2];
          ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
          PollDesc* a = poll_open(sv[0]);
          PollDesc* b = poll_open(sv[1]);
          constexpr int kRounds = 20000;
          auto echo = [](int fd, PollDesc* pd, bool first) {
            char c = 'p';
            for (int i = 0; i < kRounds; ++i) {
              if (!first || i > 0) {
                for (;;) {
                  EXPECT_EQ(poll_prepare(pd, PollMode::read), PollResult::ready);
                  if (read(fd, &c, 1) == 1) break;
                  ASSERT_EQ(errno, EAGAIN);
                  ASSERT_EQ(poll_wait(pd, PollMode::read), PollResult::ready);
                }
              }
              ASSERT_EQ(write(fd, &c, 1), 1);
            }
          };
          goro::WaitGroup wg;
          wg.go([&] { echo(sv[0], a, true); });
          wg.go([&] { echo(sv[1], b, false); });
          wg.wait();
          poll_close(a);
          poll_close(b);
          close(sv[0]);
          close(sv[1]);
        },
        {.procs = procs});
  }
}

TEST(Netpoll, PastDeadlineTimesOutAtOnceAndKeepsTimingOut) {
  goro::run([] {
    Pipe p;
    PollDesc* pd = poll_open(p.r);
    poll_set_deadline(pd, PollMode::read, monotonic_ns() - 1);
    EXPECT_EQ(poll_prepare(pd, PollMode::read), PollResult::timeout);
    EXPECT_EQ(poll_wait(pd, PollMode::read), PollResult::timeout);
    // The write direction is not affected.
    EXPECT_EQ(poll_prepare(pd, PollMode::write), PollResult::ready);
    poll_set_deadline(pd, PollMode::read, 0);  // cleared
    EXPECT_EQ(poll_prepare(pd, PollMode::read), PollResult::ready);
    poll_close(pd);
  });
}

TEST(Netpoll, DeadlineWakesAParkedReader) {
  goro::run([] {
    Pipe p;
    PollDesc* pd = poll_open(p.r);
    poll_set_deadline(pd, PollMode::read, in_ns(20ms));
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(poll_wait(pd, PollMode::read), PollResult::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 15ms);
    poll_close(pd);
  });
}

TEST(Netpoll, DeadlineMovedWhileWaitingAppliesToThatWait) {
  goro::run([] {
    Pipe p;
    PollDesc* pd = poll_open(p.r);
    poll_set_deadline(pd, PollMode::read, in_ns(1h));
    goro::Chan<PollResult> result(1);
    goro::go([&] { result.send(poll_wait(pd, PollMode::read)); });
    // Let the reader park: the only other goroutine is this one, so yield until it waits.
    while (netpoll_waiters() == 0) goro::yield();
    poll_set_deadline(pd, PollMode::read, monotonic_ns() - 1);  // into the past: wakes it
    EXPECT_EQ(result.recv(), PollResult::timeout);
    poll_set_deadline(pd, PollMode::read, in_ns(1h));  // moved forward: usable again
    goro::go([&] { result.send(poll_wait(pd, PollMode::read)); });
    while (netpoll_waiters() == 0) goro::yield();
    char c = 'y';
    EXPECT_EQ(write(p.w, &c, 1), 1);
    EXPECT_EQ(result.recv(), PollResult::ready);
    poll_close(pd);
  });
}

TEST(Netpoll, EvictWakesReaderAndWriterWithClosed) {
  goro::run([] {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    PollDesc* pd = poll_open(sv[0]);
    // Fill the send buffer so that a writer must wait.
    char buf[4096] = {};
    while (write(sv[0], buf, sizeof buf) > 0) {
    }
    goro::Chan<PollResult> results(2);
    goro::go([&] { results.send(poll_wait(pd, PollMode::read)); });
    goro::go([&] { results.send(poll_wait(pd, PollMode::write)); });
    while (netpoll_waiters() < 2) goro::yield();
    poll_evict(pd);
    EXPECT_EQ(results.recv(), PollResult::closed);
    EXPECT_EQ(results.recv(), PollResult::closed);
    EXPECT_EQ(poll_prepare(pd, PollMode::read), PollResult::closed);
    poll_close(pd);
    close(sv[0]);
    close(sv[1]);
  });
}

TEST(Netpoll, WaitFdLeavesTheFdToTheCallerAndSurvivesReuse) {
  goro::run([] {
    for (int i = 0; i < 100; ++i) {
      Pipe p;
      char c = 'z';
      ASSERT_EQ(write(p.w, &c, 1), 1);
      EXPECT_EQ(poll_wait_fd(p.r, PollMode::read, 0), PollResult::ready);
      // The same fd numbers come back in the next round: nothing stale may remain.
    }
    Pipe p;
    EXPECT_EQ(poll_wait_fd(p.r, PollMode::read, in_ns(5ms)), PollResult::timeout);
    EXPECT_EQ(poll_wait_fd(p.w, PollMode::write, 0), PollResult::ready);
  });
}

TEST(Netpoll, GoroutinesInIoWaitAreNotADeadlock) {
  // main waits for a pipe that a plain thread (not registered anywhere) writes later: the
  // deadlock detector must count the I/O wait and stay quiet.
  Pipe p;
  std::thread writer([&] {
    while (netpoll_waiters() == 0) std::this_thread::yield();  // the reader is parked
    char c = 'w';
    EXPECT_EQ(write(p.w, &c, 1), 1);
  });
  goro::run([&] { EXPECT_EQ(poll_wait_fd(p.r, PollMode::read, 0), PollResult::ready); },
            {.procs = 2, .on_fatal = goro::OnFatal::raise});
  writer.join();
}

TEST(Netpoll, AbandonedIoWaiterIsForgottenAtTheEndOfRun) {
  Pipe p;
  goro::run([&] {
    goro::go([&] { poll_wait_fd(p.r, PollMode::read, 0); });
    while (netpoll_waiters() == 0) goro::yield();
  });
  EXPECT_EQ(netpoll_waiters(), 0);
  // Readiness after the run touches nobody; the next run works.
  char c = 'a';
  ASSERT_EQ(write(p.w, &c, 1), 1);
  goro::run([&] { EXPECT_EQ(read(p.r, &c, 1), 1); });
}

}  // namespace
}  // namespace goro::detail
