// goro: sysmon, the monitor thread (Go's sysmon), spare workers and the SIGQUIT dump.
//
// goro cannot preempt C++ code, so a goroutine that computes (or blocks its thread outside
// blocking()) keeps its worker. Go's sysmon would take the P away from such an M (handoffp);
// in goro a P *is* its thread, so the hand-off is: move the stuck worker's queued goroutines
// to the global queue and let a *spare worker* (an extra P with its own OS thread, beyond
// procs) run them and the timers. When the stuck goroutine lets go, its worker sees it was
// retaken and retires to the spare list, so more than procs goroutines run in parallel only
// while one keeps a thread (API.md allows exactly that).
//
// Detection: each P counts its switches (P::switches: odd while a goroutine runs; the
// scheduler's one extra store per switch). Sysmon samples every P; a counter that stayed odd
// and unchanged for kRetakeAfterNs while work waits is a stuck worker. Work waits when the
// worker's own queue or runnext is not empty, or, with no idle worker to take it, when the
// global queue is not empty, a timer is due or I/O is ready (sysmon polls the network
// without blocking and queues what it finds, as Go's sysmon does).
//
// Sleep: sysmon waits in ppoll on a pipe, 20 us doubling to 10 ms while nothing happens, and
// without a timeout once every worker is idle (nothing runs, so nothing can get stuck: an
// idle runtime costs no CPU); the first worker to leave the idle list wakes it
// (sysmon_note_busy, a load on the idle -> busy path only, never on a switch). The pipe also
// carries the end of run ('s', with Runtime::sysmon_stop set first) and SIGQUIT ('q',
// written by the signal handler: write() is async-signal-safe, and the handler takes no lock
// and allocates nothing); sysmon produces the dump on its own thread with the fatal path's
// machinery (fatal_exit) and exits 2. The pipe is per process (recreated in a forked child)
// and never closed, so a handler that races the end of run never writes into a reused fd.
//
// Who touches what:
//   P::switches, P::current   written by the P's thread; read by sysmon and the dump.
//   P::retaken                set by sysmon (handing off), cleared by the P's thread when it
//                             retires; read on the P's thread at each return to g0.
//   P::run_since_*            written by sysmon only (once a goroutine ran kRetakeAfterNs),
//                             read by the dump; valid while switches still matches.
//   P::spare, spare_next,     under sched_mu: a retiring worker pushes itself, sysmon pops
//   Runtime::spare_list       (to reuse it), begin_stop wakes them all.
//   Runtime::ps[], nps        ps[i] is written once, before nps passes i (release); sysmon
//                             appends under ps_mu after checking stopping there, and run()
//                             reads nps under ps_mu once the workers left, so every spare
//                             thread it must join is published by then.
//   Runtime::nworkers         Ps not on the spare list; decremented under sched_mu (with the
//                             push on the spare list), so go_idle's deadlock check
//                             (npidle == nworkers, under sched_mu) never counts a retired P.
//                             Incremented with P::retaken set, in one critical section, so
//                             a retiring worker sees both or neither; before the spare
//                             runs, which can only delay a deadlock verdict.
// Lock order: ps_mu > sched_mu (never nested today; the rank checker enforces the order).
//
// No lost wake-up: a spare sleeps on its futex word after publishing itself on the spare
// list with the word at 0 (under sched_mu); sysmon and begin_stop take it off the list (or
// see stopping) and set the word to 1 under sched_mu before futex_wake, and the spare re-checks
// spare/stopping under sched_mu after every wake. A retiring worker hands its queue to the global
// queue before it leaves the rotation and then wakes an idle worker (wakep, and recheck_deadlock:
// with it gone, every remaining worker may be idle and the deadlock check must run again). A worker
// that was idle when retaken retires after the next goroutine it runs (its extra thread idles).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "netpoll.hpp"
#include "platform.hpp"
#include "runq.hpp"
#include "scheduler.hpp"

namespace goro::detail {

namespace {

constexpr std::int64_t kMinDelayNs = 20'000;
constexpr std::int64_t kMaxDelayNs = 10'000'000;
// Go's forcePreemptNS. Sanitized builds run 5-15x slower (a first goroutine stack or TSan
// fiber alone can take milliseconds): a longer slice there keeps hand-offs for real stalls.
constexpr std::int64_t kRetakeAfterNs = (GORO_ASAN || GORO_TSAN) ? 50'000'000 : 10'000'000;

// The wake pipe: only run()'s thread creates it (runs are sequential); the handler reads
// g_quit_fd.
int g_pipe_r = -1;
int g_pipe_w = -1;
pid_t g_pipe_pid = 0;
std::atomic<int> g_quit_fd{-1};
struct sigaction g_old_quit;
bool g_quit_installed = false;

void on_sigquit(int) {
  const int saved = errno;
  const int fd = g_quit_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    const char c = 'q';
    [[maybe_unused]] ssize_t n = ::write(fd, &c, 1);
  }
  errno = saved;
}

void open_pipe() {
  if (g_pipe_pid == ::getpid()) return;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    g_pipe_r = g_pipe_w = -1;  // sysmon then only sleeps; no SIGQUIT dump
    return;
  }
  g_pipe_r = fds[0];
  g_pipe_w = fds[1];
  g_pipe_pid = ::getpid();
}

// Reads what the pipe holds; true if a SIGQUIT came.
bool drain_pipe() {
  bool quit = false;
  char buf[64];
  for (;;) {
    const ssize_t n = ::read(g_pipe_r, buf, sizeof buf);
    if (n > 0) {
      quit = quit || std::find(buf, buf + n, 'q') != buf + n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return quit;
  }
}

// Waits for a byte on the pipe or delay_ns (< 0: no timeout).
void wait_pipe(std::int64_t delay_ns) {
  timespec ts = to_timespec(delay_ns);
  if (g_pipe_r < 0) {
    nanosleep(&ts, nullptr);
    return;
  }
  pollfd pfd{g_pipe_r, POLLIN, 0};
  ::ppoll(&pfd, 1, delay_ns < 0 ? nullptr : &ts, nullptr);
}

void write_pipe(char c) {
  if (g_pipe_w >= 0) {
    [[maybe_unused]] ssize_t n = ::write(g_pipe_w, &c, 1);
  }
}

// Moves p's queued goroutines (runnext included) to the global queue, as a thief would.
bool move_queue(Runtime* rt, P* p) {
  G* batch[kRunQueueSize / 2];
  bool moved = false;
  for (int round = 0; round < 8; ++round) {  // bounded: the stuck goroutine may keep spawning
    const std::uint32_t n = runq_grab(p, batch, true);
    if (n == 0) break;
    global_put_batch(rt, batch, n);
    moved = true;
  }
  return moved;
}

// Goroutines whose I/O is ready, moved to the global queue: with every worker busy nobody
// else polls (Go's sysmon polls the network for the same reason).
void poll_into_global(Runtime* rt) {
  if (netpoll_waiters() == 0) return;
  G* batch[128];
  const int n = netpoll(0, batch, 128);
  if (n > 0) global_put_batch(rt, batch, static_cast<std::uint32_t>(n));
}

// Starts the worker that hand_off counted in nworkers: a parked spare, or a new P and thread.
void start_spare(Runtime* rt) {
  P* q = nullptr;
  {
    LockGuard guard(rt->sched_mu);
    if (rt->stopping.load(std::memory_order_relaxed)) return;
    q = rt->spare_list;
    if (q != nullptr) {
      rt->spare_list = q->spare_next;
      q->spare = false;
      q->spare_next = nullptr;
      q->wake_word.store(1, std::memory_order_release);
    }
  }
  if (q != nullptr) {
    futex_wake(&q->wake_word, 1);
    return;
  }
  LockGuard guard(rt->ps_mu);
  if (rt->stopping.load(std::memory_order_seq_cst)) return;  // run() joins what it saw
  const int n = rt->nps.load(std::memory_order_relaxed);
  if (n >= rt->max_ps) fatal_thread_exhaustion(rt);
  q = new_p(rt, n);
  rt->ps[static_cast<std::size_t>(n)] = q;
  try {
    q->thread = std::thread(worker_main, q);
  } catch (const std::system_error&) {
    fatal_exit(rt, "runtime: failed to create new OS thread");
  }
  rt->nps.store(n + 1, std::memory_order_release);
}

// p's goroutine has kept its thread for kRetakeAfterNs: hand its work to another thread if
// any waits. Returns whether anything was done.
bool hand_off(Runtime* rt, P* p, std::int64_t now) {
  const bool local = !runq_empty(p);
  if (p->retaken.load(std::memory_order_relaxed)) {
    // A spare already replaces it: pass on only what the stuck goroutine queued since.
    if (!local || !move_queue(rt, p)) return false;
    wakep(rt);
    return true;
  }
  if (!local) {
    if (rt->npidle.load(std::memory_order_seq_cst) > 0) return false;  // an idle worker serves
    poll_into_global(rt);
    const bool global = rt->gq_size.load(std::memory_order_seq_cst) != 0;
    const bool timers = timers_next_when() <= now;
    if (!global && !timers) return false;
  }
  {
    // One critical section: a retaken worker that retires at once (its goroutine switched
    // just now) must see the extra worker counted, or it would run on beside the spare and
    // parallelism would stay above procs.
    LockGuard guard(rt->sched_mu);
    if (rt->stopping.load(std::memory_order_relaxed)) return false;
    rt->nworkers.fetch_add(1, std::memory_order_seq_cst);
    p->retaken.store(true, std::memory_order_relaxed);
  }
  move_queue(rt, p);  // before the spare starts, so that it finds the work
  start_spare(rt);
  wakep(rt);
  return true;
}

struct Seen {
  std::uint32_t switches = 0;
  std::int64_t since = 0;  // when sysmon first saw this value
  bool published = false;  // run_since_* written for this value
};

// One pass over every P; true when a worker was retaken or work moved.
bool retake(Runtime* rt, std::vector<Seen>& seen) {
  const std::int64_t now = now_ns();
  const int n = all_ps(rt);
  if (seen.size() < static_cast<std::size_t>(n)) seen.resize(static_cast<std::size_t>(n));
  bool acted = false;
  for (int i = 0; i < n; ++i) {
    P* p = rt->ps[static_cast<std::size_t>(i)];
    Seen& v = seen[static_cast<std::size_t>(i)];
    const std::uint32_t s = p->switches.load(std::memory_order_relaxed);
    if (s != v.switches) {
      v = Seen{s, now, false};
      continue;
    }
    if ((s & 1) == 0 || now - v.since < kRetakeAfterNs) continue;  // on g0, or not for long
    if (!v.published) {
      // For the dump's "[running, 3s]". Written only for long runs: sysmon stays off the
      // P's cache line otherwise.
      p->run_since_ns.store(v.since, std::memory_order_relaxed);
      p->run_since_switches.store(s, std::memory_order_relaxed);
      v.published = true;
    }
    if (!rt->stopping.load(std::memory_order_relaxed)) acted = hand_off(rt, p, now) || acted;
  }
  return acted;
}

bool all_idle(Runtime* rt) {
  return rt->npidle.load(std::memory_order_seq_cst) == rt->nworkers.load(std::memory_order_seq_cst);
}

void sysmon_main(Runtime* rt) {
  std::vector<Seen> seen;
  std::int64_t delay = kMinDelayNs;
  for (;;) {
    wait_pipe(delay);
    if (g_pipe_r >= 0 && drain_pipe()) fatal_exit(rt, "SIGQUIT: quit");
    if (rt->sysmon_stop.load(std::memory_order_acquire)) return;
    if (delay < 0) {  // a worker left the idle list (or a spurious wake): watch again
      rt->sysmon_idle.store(false, std::memory_order_relaxed);
      delay = kMinDelayNs;
    }
    delay = retake(rt, seen) ? kMinDelayNs : std::min(delay * 2, kMaxDelayNs);
    // Every worker idle: nothing runs, so nothing can get stuck. Sleep until a worker leaves
    // the idle list (Go's sysmon sleeps the same way). Dekker with sysmon_note_busy: we
    // publish sysmon_idle, then read npidle; a worker decrements npidle, then reads
    // sysmon_idle (all seq_cst), so either we see it busy or it sees us asleep and wakes us.
    if (delay == kMaxDelayNs && g_pipe_r >= 0 && all_idle(rt)) {
      rt->sysmon_idle.store(true, std::memory_order_seq_cst);
      if (all_idle(rt)) {
        delay = -1;
      } else {
        rt->sysmon_idle.store(false, std::memory_order_relaxed);
      }
    }
  }
}

}  // namespace

P* new_p(Runtime* rt, int index) {
  P* p = new P();
  p->index = index;
  p->rt = rt;
  p->rand.state ^= (static_cast<std::uint64_t>(index) + 1) * 0xD1B54A32D192ED03ull ^
                   static_cast<std::uint64_t>(now_ns());
  return p;
}

void sysmon_start(Runtime* rt, bool handle_sigquit) {
  open_pipe();
  if (g_pipe_r >= 0) drain_pipe();  // a signal or stop that raced the end of the last run
  rt->sysmon_stop.store(false, std::memory_order_relaxed);
  if (handle_sigquit && g_pipe_w >= 0) {
    g_quit_fd.store(g_pipe_w, std::memory_order_relaxed);
    struct sigaction sa {};
    sa.sa_handler = on_sigquit;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    g_quit_installed = ::sigaction(SIGQUIT, &sa, &g_old_quit) == 0;
  }
  rt->sysmon = std::thread(sysmon_main, rt);
}

void sysmon_stop(Runtime* rt) noexcept {
  if (g_quit_installed) {
    // Restored first: a SIGQUIT from here on gets the old disposition, and one whose
    // handler already wrote 'q' is still served by sysmon below (or drained next run).
    ::sigaction(SIGQUIT, &g_old_quit, nullptr);
    g_quit_installed = false;
  }
  rt->sysmon_stop.store(true, std::memory_order_release);
  write_pipe('s');
  if (rt->sysmon.joinable()) rt->sysmon.join();
}

void sysmon_wake(Runtime* rt) noexcept {
  if (rt->sysmon_idle.exchange(false, std::memory_order_seq_cst)) write_pipe('w');
}

bool retire_worker(P* p) {
  Runtime* rt = p->rt;
  G* batch[kRunQueueSize + 1];  // the ring and runnext
  std::uint32_t n = 0;
  while (G* g = runq_get(p)) batch[n++] = g;
  if (n > 0) global_put_batch(rt, batch, n);
  bool parked = false;
  {
    LockGuard guard(rt->sched_mu);
    p->retaken.store(false, std::memory_order_relaxed);
    if (rt->stopping.load(std::memory_order_relaxed)) return false;
    if (rt->nworkers.load(std::memory_order_relaxed) > rt->nprocs) {
      parked = true;
      p->spare = true;
      p->spare_next = rt->spare_list;
      rt->spare_list = p;
      p->wake_word.store(0, std::memory_order_relaxed);
      rt->nworkers.fetch_sub(1, std::memory_order_seq_cst);
    }
  }
  if (n > 0) wakep(rt);
  if (!parked) return true;  // no spare replaced it: run on
  // With this worker gone every remaining one may be idle: let one run the deadlock check.
  recheck_deadlock(rt);
  for (;;) {
    futex_wait(&p->wake_word, 0, nullptr);
    LockGuard guard(rt->sched_mu);
    if (rt->stopping.load(std::memory_order_relaxed)) return false;
    if (!p->spare) {
      p->wake_word.store(0, std::memory_order_relaxed);
      return true;
    }
  }
}

void wake_spares(Runtime* rt) {
  for (P* q = rt->spare_list; q != nullptr; q = q->spare_next) {
    q->wake_word.store(1, std::memory_order_release);
    futex_wake(&q->wake_word, 1);
  }
}

void fatal_thread_exhaustion(Runtime* rt) noexcept {
  fatal_exit(rt, "runtime: program exceeds " + std::to_string(rt->max_ps + 1) +
                     "-thread limit\nfatal error: thread exhaustion");
}

}  // namespace goro::detail
