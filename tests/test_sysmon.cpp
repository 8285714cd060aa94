// sysmon: a goroutine that keeps its worker does not starve the others (its queue and the
// timers are handed to a spare worker), the dump shows how long it has been running, the
// SIGQUIT dump, the thread limit, and an idle runtime's CPU use.
//
// Scenarios that would hang without the hand-off run in a child process with a short alarm,
// so that a regression fails (killed by SIGALRM) instead of hanging the suite.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "scheduler.hpp"  // white-box: the count of workers in the rotation
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::describe;
using goro_test::exited_with;

namespace {

constexpr unsigned kChildAlarmSeconds = 20;

template <class F>
goro_test::ChildResult run_child(F scenario) {
  return goro_test::run_in_child([&scenario] {
    ::alarm(kChildAlarmSeconds);  // a hang (no hand-off) dies by SIGALRM: a failure
    scenario();
  });
}

// Spins on the worker's thread without ever switching until stop is set.
void spin_until(const std::atomic<bool>& stop, std::atomic<bool>* started = nullptr) {
  if (started != nullptr) started->store(true);
  while (!stop.load(std::memory_order_relaxed)) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

// Waits (yielding) until flag is set: at procs=1 this yield puts the caller behind a spinner
// that keeps the only worker, so returning at all needs the hand-off.
void wait_for(const std::atomic<bool>& flag) {
  ASSERT_TRUE(goro_test::eventually([&flag] { return flag.load(); }, 15s));
}

goro::Options procs(int n) {
  goro::Options o;
  o.procs = n;
  return o;
}

std::int64_t cpu_us() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& tv) { return std::int64_t{tv.tv_sec} * 1'000'000 + tv.tv_usec; };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

}  // namespace

TEST(HandOff, SpinnerDoesNotStopTimers) {
  const auto r = run_child([] {
    std::atomic<bool> stop{false};
    goro::run(
        [&stop] {
          goro::go([&stop] { spin_until(stop); });
          const auto start = goro::Clock::now();
          goro::sleep(20ms);  // the spinner holds the only worker: a spare must fire this
          if (goro_test::since(start) > 5s) std::_Exit(4);
          stop = true;
        },
        procs(1));
  });
  EXPECT_TRUE(exited_with(r, 0)) << describe(r);
}

TEST(HandOff, SpinnerDoesNotStopOtherGoroutines) {
  const auto r = run_child([] {
    std::atomic<bool> stop{false};
    std::atomic<bool> started{false};
    const int sum = goro::run(
        [&] {
          goro::go([&] { spin_until(stop, &started); });
          wait_for(started);  // main itself ran on past the spinner: it was handed off
          goro::Chan<int> out;
          goro::WaitGroup wg;
          for (int i = 1; i <= 10; ++i) {
            wg.add(1);
            goro::go([&wg, out, i]() mutable {
              goro::yield();
              out.send(i);
              wg.done();
            });
          }
          int total = 0;
          for (int i = 0; i < 10; ++i) total += *out.recv();
          wg.wait();
          stop = true;
          return total;
        },
        procs(1));
    if (sum != 55) std::_Exit(4);
  });
  EXPECT_TRUE(exited_with(r, 0)) << describe(r);
}

// A goroutine that blocks its thread in a system call (not wrapped in blocking()) is a
// stuck worker too: main must still run to unblock it.
TEST(HandOff, UnwrappedBlockingCallDoesNotStopOthers) {
  const auto r = run_child([] {
    int fds[2];
    if (::pipe(fds) != 0) std::_Exit(5);
    std::atomic<bool> started{false};
    goro::run(
        [&] {
          goro::Chan<int> done;
          goro::go([&, done]() mutable {
            started = true;
            char c = 0;
            if (::read(fds[0], &c, 1) != 1 || c != 'x') std::_Exit(6);
            done.send(1);
          });
          wait_for(started);
          goro::sleep(20ms);  // likely inside read() by now; correct either way
          if (::write(fds[1], "x", 1) != 1) std::_Exit(7);
          done.recv();
        },
        procs(1));
  });
  EXPECT_TRUE(exited_with(r, 0)) << describe(r);
}

// After a hand-off the retaken worker retires once its goroutine parks; if that leaves
// every goroutine blocked, the deadlock is still reported (not a hang).
TEST(HandOff, DeadlockAfterHandOffIsReported) {
  const auto r = run_child([] {
    std::atomic<bool> stop{false};
    std::atomic<bool> started{false};
    goro::run(
        [&] {
          goro::go([&] {
            spin_until(stop, &started);
            goro::Chan<int>().recv();  // then blocks forever
          });
          wait_for(started);
          stop = true;
          goro::Chan<int>().recv();
        },
        procs(1));
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_EQ(r.err.rfind("fatal error: all goroutines are asleep - deadlock!\n\n", 0), 0u) << r.err;
}

TEST(HandOff, ManySpinnersEachGetAThreadAndAllFinish) {
  const auto r = run_child([] {
    std::atomic<bool> stop{false};
    std::atomic<int> running{0};
    goro::run(
        [&] {
          constexpr int kSpinners = 3;
          for (int i = 0; i < kSpinners; ++i) {
            goro::go([&] {
              running.fetch_add(1);
              spin_until(stop);
            });
          }
          // All three hold a thread at once: procs=1 plus a spare for each retaken one.
          if (!goro_test::eventually([&] { return running.load() == kSpinners; }, 15s)) {
            std::_Exit(4);
          }
          goro::sleep(30ms);  // timers still fire with every spinner holding a thread
          stop = true;
        },
        procs(1));
  });
  EXPECT_TRUE(exited_with(r, 0)) << describe(r);
}

// Readiness of a socket is found by someone polling the network; with the only worker
// stuck, that someone is sysmon, which queues the reader and hands it to a spare.
TEST(HandOff, ReadyIoIsServedWhileTheOnlyWorkerIsStuck) {
  const auto r = run_child([] {
    std::atomic<bool> stop{false};
    std::atomic<bool> spinning{false};
    goro::run(
        [&] {
          goro::net::Listener ln = goro::net::listen("tcp", "127.0.0.1:0");
          const std::string addr = ln.addr();
          const int port = std::stoi(addr.substr(addr.rfind(':') + 1));
          goro::Chan<int> done;
          goro::go([&, done]() mutable {
            goro::net::Conn c = ln.accept();  // IO wait, then readiness only epoll knows of
            char b = 0;
            if (c.read(&b, 1) != 1 || b != 'x') std::_Exit(6);
            stop = true;
            done.send(1);
          });
          // The reader parks in accept first: then nothing is queued while the spinner runs,
          // and only a poll of the network can find the connection.
          const bool parked = goro_test::eventually([] {
            for (const goro::GoroutineInfo& g : goro::goroutines()) {
              if (g.id == 2) return g.state == "IO wait";
            }
            return false;
          });
          if (!parked) std::_Exit(5);
          goro::go([&] { spin_until(stop, &spinning); });
          // A plain thread connects and writes once the spinner holds the worker.
          std::thread client([port, &spinning] {
            while (!spinning.load()) std::this_thread::yield();
            const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in sa{};
            sa.sin_family = AF_INET;
            sa.sin_port = htons(static_cast<std::uint16_t>(port));
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) std::_Exit(7);
            if (::write(fd, "x", 1) != 1) std::_Exit(8);
            char sink;
            [[maybe_unused]] ssize_t n = ::read(fd, &sink, 1);  // until the process ends
          });
          client.detach();
          done.recv();
        },
        procs(1));
  });
  EXPECT_TRUE(exited_with(r, 0)) << describe(r);
}

// The spare only stands in while the goroutine keeps its thread: once it parks, its worker
// retires and the rotation is back to procs workers.
TEST(HandOff, RetakenWorkerRetiresOnceItsGoroutineSwitches) {
  const auto r = run_child([] {
    std::atomic<bool> stop{false};
    std::atomic<bool> started{false};
    goro::run(
        [&] {
          goro::detail::Runtime* rt = goro::detail::current_runtime();
          goro::Chan<int> parked;
          goro::go([&, parked]() mutable {
            spin_until(stop, &started);
            parked.recv();  // switches: its worker must retire
          });
          wait_for(started);
          if (rt->nworkers.load() != 2) std::_Exit(4);  // procs + the spare
          stop = true;
          if (!goro_test::eventually([rt] { return rt->nworkers.load() == 1; }, 15s)) {
            std::_Exit(5);
          }
          parked.send(1);
        },
        procs(1));
  });
  EXPECT_TRUE(exited_with(r, 0)) << describe(r);
}

// Sysmon sleeps without a timeout while every worker is idle; the worker that leaves the
// idle list must wake it, or this spinner would never be noticed.
TEST(HandOff, WorksAfterAnIdlePeriod) {
  const auto r = run_child([] {
    std::atomic<bool> stop{false};
    std::atomic<bool> started{false};
    goro::run(
        [&] {
          goro::sleep(100ms);  // every worker idle: sysmon goes to sleep
          goro::go([&] { spin_until(stop, &started); });
          wait_for(started);
          stop = true;
        },
        procs(1));
  });
  EXPECT_TRUE(exited_with(r, 0)) << describe(r);
}

TEST(Dump, ShowsRunningTimeOfAGoroutineThatKeepsItsWorker) {
  const auto r = run_child([] {
    std::atomic<bool> stop{false};
    std::atomic<bool> started{false};
    goro::run(
        [&] {
          goro::go([&] { spin_until(stop, &started); });  // goroutine 2
          wait_for(started);
          // Polls (not a synchronisation): the dump shows running times from 1 s on.
          const bool long_enough = goro_test::eventually(
              [] {
                for (const goro::GoroutineInfo& g : goro::goroutines()) {
                  if (g.id == 2 && g.state == "running" && g.waited >= 1s) return true;
                }
                goro::sleep(20ms);
                return false;
              },
              15s);
          std::ostringstream dump;
          goro::dump(dump);
          stop = true;
          std::cerr << (long_enough ? "long enough\n" : "never long\n") << dump.str();
        },
        procs(1));
  });
  ASSERT_TRUE(exited_with(r, 0)) << describe(r);
  EXPECT_NE(r.err.find("long enough\n"), std::string::npos) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex(R"(goroutine 2 \[running, [0-9]+s\]: )")))
      << r.err;
  // Main, which calls dump, is running too, but only briefly: no time shown.
  EXPECT_NE(r.err.find("goroutine 1 [running]: created at goro::run"), std::string::npos) << r.err;
}

TEST(Sigquit, PrintsHeadlineBlankLineAndDumpThenExits2) {
  const auto r = run_child([] {
    goro::run(
        [] {
          goro::Chan<int> never;
          goro::go([never]() mutable { never.recv(); });  // goroutine 2
          const bool parked = goro_test::eventually([] {
            for (const goro::GoroutineInfo& g : goro::goroutines()) {
              if (g.id == 2) return g.state == "chan receive";
            }
            return false;
          });
          if (!parked) std::_Exit(4);
          ::kill(::getpid(), SIGQUIT);
          goro::sleep(15s);  // a timer is armed: no deadlock while sysmon dumps
        },
        procs(2));
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_EQ(r.err.rfind("SIGQUIT: quit\n\ngoroutine ", 0), 0u) << r.err;
  // Main sent the signal: sysmon may dump before it reaches its sleep.
  EXPECT_TRUE(std::regex_search(r.err, std::regex(R"(\ngoroutine 1 \[(running|sleep)\]: )")))
      << r.err;
  EXPECT_NE(r.err.find("goroutine 2 [chan receive"), std::string::npos) << r.err;
}

TEST(Sigquit, DumpsWhileAGoroutineKeepsItsWorker) {
  const auto r = run_child([] {
    std::atomic<bool> stop{false};
    goro::run(
        [&stop] {
          goro::go([&stop] { spin_until(stop); });
          goro::yield();
          ::kill(::getpid(), SIGQUIT);
          goro::sleep(15s);
        },
        procs(1));
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_EQ(r.err.rfind("SIGQUIT: quit\n\n", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("goroutine 2 [running"), std::string::npos) << r.err;
}

TEST(Sigquit, LeftAloneWhenHandleSigquitIsFalse) {
  const auto r = run_child([] {
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    goro::Options o = procs(2);
    o.handle_sigquit = false;
    goro::run(
        [] {
          ::kill(::getpid(), SIGQUIT);
          goro::sleep(15s);
        },
        o);
  });
  EXPECT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGQUIT) << describe(r);
  EXPECT_EQ(r.err.find("SIGQUIT: quit"), std::string::npos) << r.err;
}

namespace {
void my_quit_handler(int) {}
}  // namespace

TEST(Sigquit, PreviousDispositionIsRestoredWhenRunReturns) {
  struct sigaction mine {};
  mine.sa_handler = my_quit_handler;
  sigemptyset(&mine.sa_mask);
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGQUIT, &mine, &old), 0);
  void (*during)(int) = nullptr;
  goro::run([&during] {
    struct sigaction now {};
    ::sigaction(SIGQUIT, nullptr, &now);
    during = now.sa_handler;
  });
  struct sigaction after {};
  ::sigaction(SIGQUIT, nullptr, &after);
  ::sigaction(SIGQUIT, &old, nullptr);
  EXPECT_NE(during, &my_quit_handler);  // goro's handler while run() was active
  EXPECT_EQ(after.sa_handler, &my_quit_handler);
}

TEST(ThreadLimit, ExceedingItIsAFatalError) {
  const auto r = run_child([] {
    ::setenv("GORO_MAX_THREADS", "2", 1);  // the worker and sysmon: no room for a spare
    std::atomic<bool> stop{false};
    std::atomic<bool> started{false};
    goro::run(
        [&] {
          goro::go([&] { spin_until(stop, &started); });
          wait_for(started);  // needs a spare
          stop = true;
        },
        procs(1));
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_EQ(
      r.err.rfind("runtime: program exceeds 2-thread limit\nfatal error: thread exhaustion\n\n", 0),
      0u)
      << r.err;
  EXPECT_NE(r.err.find("goroutine 2 [running"), std::string::npos) << r.err;
}

TEST(ThreadLimit, ProcsAboveTheLimitFailAtStart) {
  const auto r = run_child([] {
    ::setenv("GORO_MAX_THREADS", "3", 1);
    goro::run([] {}, procs(4));
  });
  EXPECT_TRUE(exited_with(r, 2)) << describe(r);
  EXPECT_EQ(
      r.err.rfind("runtime: program exceeds 3-thread limit\nfatal error: thread exhaustion", 0), 0u)
      << r.err;
}

// A measurement, not a synchronisation: an idle runtime (every worker asleep, sysmon backed
// off) must use next to no CPU. The bound is generous.
TEST(Idle, IdleRuntimeUsesLittleCpu) {
  const std::int64_t limit_us = goro_test::kSanitized ? 150'000 : 50'000;
  std::int64_t used_us = -1;
  goro::run(
      [&used_us] {
        goro::sleep(20ms);  // let start-up settle
        const std::int64_t before = cpu_us();
        goro::sleep(200ms);
        used_us = cpu_us() - before;
      },
      procs(2));
  EXPECT_GE(used_us, 0);
  EXPECT_LT(used_us, limit_us) << "an idle runtime burned " << used_us << " us of CPU in 200 ms";
}
