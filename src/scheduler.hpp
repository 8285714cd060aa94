// goro internal: the scheduler's data structures. The life of a goroutine, top to bottom,
// is in scheduler.cpp.
//
// Lock order (outermost first):
//   channel locks (in address order, select) > a wait-table bucket lock > Runtime::ps_mu
//   > Runtime::sched_mu > StackPool::mu_ > the pending timer heap's lock > Runtime::timers.mu
// ready() may be called with channel or sync locks held; it takes sched_mu only when it
// must (global queue, idle list). A goroutine never holds any of these across a switch:
// park() hands the lock it holds to the scheduler context, which releases it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "blocking.hpp"
#include "context_switch.hpp"
#include "goro/detail/core.hpp"
#include "goro/detail/lock.hpp"
#include "park.hpp"
#include "platform.hpp"
#include "stack.hpp"
#include "timer_heap.hpp"

namespace goro::detail {

struct P;
struct Runtime;
struct ChanWaiter;

enum class GStatus : std::uint8_t { runnable, running, waiting, dead };

// Mirrors libstdc++/libc++abi's __cxa_eh_globals (Itanium C++ ABI, non-ARM-EHABI targets).
struct EhState {
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;
};

// A goroutine. Lives at the top of its own stack, so a parked goroutine costs the pages its
// stack touched and nothing else.
struct G {
  ExecContext ctx;
  std::atomic<std::uint64_t> id{0};  // atomic: a dump may read a slot being reused
  Stack stack;
  void (*entry)(void*) = nullptr;
  void* closure = nullptr;
  std::atomic<const void*> creator_pc{nullptr};
  std::atomic<GStatus> status{GStatus::runnable};
  // Read by dumps from other threads, hence atomics (relaxed: a dump is a snapshot).
  std::atomic<WaitReason> wait_reason{WaitReason::none};
  std::atomic<std::int64_t> wait_since_ns{0};
  G* sched_next = nullptr;  // global run queue link (under sched_mu)
  // kLiveMagic from commit to exit. There is no registry list: the dump and the end of run
  // find goroutines by walking every stack slot of the pool and reading this word (a slot
  // never used reads 0), so spawning and exiting take no shared lock.
  std::atomic<std::uint32_t> live_magic{0};
  // Channel waiters this goroutine is parked on (its stack), for detaching abandoned ones.
  // Owned by the goroutine (no lock: only it writes them, while running); the end of run
  // reads them once every worker has been joined.
  ChanWaiter* chan_waiters = nullptr;
  std::uint32_t chan_waiter_count = 0;
  // The C++ runtime's per-thread exception state (caught-exception stack, uncaught count),
  // saved while the goroutine is off its worker: it may park inside a catch block or a
  // destructor run by unwinding, and resume on another thread.
  EhState eh;
  // select: 0 until a waker claims this goroutine's select; then the winning waiter. Not
  // lock-guarded: the goroutine resets both before it enqueues its waiters, the one waker
  // whose CAS wins select_done writes select_winner (chan.hpp's claim_select), and the
  // goroutine reads it after it is resumed (select_winner_after_wake).
  std::atomic<std::uint32_t> select_done{0};
  ChanWaiter* select_winner = nullptr;
};

// What a goroutine asks its worker's scheduler context to do after switching to it.
enum class AfterSwitch : std::uint8_t { none, park, yield, exit };

inline constexpr std::uint32_t kRunQueueSize = 256;
inline constexpr std::int64_t kNever = INT64_MAX;  // no timer armed

// A worker: one OS thread, its scheduler context (g0) and its run queues.
struct alignas(64) P {
  int index = 0;
  Runtime* rt = nullptr;
  ExecContext g0;
  std::atomic<G*> current{nullptr};  // atomic: the dump matches it against running goroutines
  // Odd while a goroutine runs, +1 at each switch between g0 and a goroutine, +2 at each
  // switch from one goroutine to the next; sysmon (sysmon.cpp) sees a goroutine that keeps
  // the worker when it stops changing. The scheduler's only cost is this one store.
  std::atomic<std::uint32_t> switches{0};
  // Set by sysmon when it handed this worker's queue to a spare worker: the worker retires
  // to the spare list at its next pass through g0 (retire_worker).
  std::atomic<bool> retaken{false};

  // Local run queue: a ring the owner pushes at the tail and pops at the head; thieves
  // take half from the head with a CAS (Go's runq).
  std::atomic<std::uint32_t> runq_head{0};
  std::atomic<std::uint32_t> runq_tail{0};
  std::atomic<G*> runq[kRunQueueSize];
  // A goroutine readied by a hand-off runs next on this worker (ping-pong stays local).
  std::atomic<G*> runnext{nullptr};

  std::uint32_t sched_tick = 0;
  std::uint32_t runnext_streak = 0;  // consecutive runs taken from runnext
  FastRand rand;

  // What the goroutine that last switched away (prev) asked the next context to finish.
  AfterSwitch after = AfterSwitch::none;
  G* prev = nullptr;
  void (*unlock_fn)(void*) = nullptr;
  void* unlock_arg = nullptr;
  EhState g0_eh;                  // g0's C++ exception state while goroutines run
  EhState* eh_globals = nullptr;  // this worker thread's __cxa_eh_globals
  std::int64_t clock_ns = 0;      // coarse monotonic clock, read at each pass through g0

  // Idle: the worker sleeps on wake_word; idle/idle_next are guarded by sched_mu.
  std::atomic<std::uint32_t> wake_word{0};
  bool idle = false;
  P* idle_next = nullptr;
  std::atomic<bool> spinning{false};
  std::atomic<bool> in_netpoll{false};  // sleeping in epoll_wait, not on wake_word

  StackCache stacks;
  std::thread thread;
  void* altstack = nullptr;

  // Sysmon's view (sysmon.cpp): written by sysmon only once a goroutine has run for a while,
  // read by the dump; valid while switches still equals run_since_switches.
  std::atomic<std::uint32_t> run_since_switches{0};
  std::atomic<std::int64_t> run_since_ns{0};
  // On the spare list (guarded by sched_mu, as idle/idle_next).
  bool spare = false;
  P* spare_next = nullptr;
};

inline constexpr std::uint32_t kLiveMagic = 0x60A071FE;

// Where the G of a stack slot lives: just below the canary word at the top, 64-aligned.
inline G* goroutine_in_slot(char* lo, std::size_t size) noexcept {
  auto top = reinterpret_cast<std::uintptr_t>(lo + size - 16);
  return reinterpret_cast<G*>((top - sizeof(G)) & ~std::uintptr_t{63});
}

struct Runtime {
  int nprocs = 1;
  bool raise = false;
  // Every P of the run: the nprocs workers, then spare workers sysmon started. Sized once to
  // max_ps and never resized, so threads read ps[i] for i < nps (acquire) without a lock;
  // sysmon appends under ps_mu.
  std::vector<P*> ps;
  std::atomic<int> nps{0};
  int max_ps = 1;  // the thread limit (GORO_MAX_THREADS) minus the sysmon thread
  Lock ps_mu{LockRank::procs};
  // Ps not parked on the spare list: nprocs, plus one per retaken worker that has not
  // retired yet (parallelism exceeds procs only while a goroutine keeps a thread).
  std::atomic<int> nworkers{0};
  StackPool stacks;

  Lock sched_mu{LockRank::sched};
  G* gq_head GORO_GUARDED_BY(sched_mu) = nullptr;
  G* gq_tail GORO_GUARDED_BY(sched_mu) = nullptr;
  std::atomic<std::size_t> gq_size{0};
  P* idle_list GORO_GUARDED_BY(sched_mu) = nullptr;
  P* spare_list GORO_GUARDED_BY(sched_mu) = nullptr;
  std::atomic<int> npidle{0};
  std::atomic<int> nmspinning{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> netpoll_blocked{false};  // one idle worker at a time sleeps in netpoll

  std::atomic<std::uint64_t> next_id{1};
  std::atomic<std::int64_t> live{0};       // live goroutines
  std::atomic<std::int64_t> nblocking{0};  // goroutines inside blocking()
  std::atomic<std::int64_t> niowait{0};    // goroutines parked on the netpoller
  std::atomic<std::int64_t> nforeign{0};   // live ForeignThread registrations
  std::uint64_t run_seq = 0;               // which run (ForeignThread outliving it)

  TimerHeap timers;       // this run's timers (timer.hpp); cleared and closed at its end
  BlockingPool blocking;  // blocking()'s helper threads; stopped at the end of the run

  Lock fatal_mu{LockRank::leaf};
  bool fatal GORO_GUARDED_BY(fatal_mu) = false;
  std::string fatal_text GORO_GUARDED_BY(fatal_mu);
  std::exception_ptr panic GORO_GUARDED_BY(fatal_mu);

  std::thread sysmon;
  std::atomic<bool> sysmon_stop{false};
  std::atomic<bool> sysmon_idle{false};  // sysmon sleeps until a worker leaves the idle list

  explicit Runtime(int procs, std::size_t stack_size);
};

// The Ps published so far (workers and spares); rt->ps[i] is set for every i below it.
inline int all_ps(const Runtime* rt) noexcept { return rt->nps.load(std::memory_order_acquire); }

// The running goroutine / worker of the calling thread. Deliberately not inlined: a
// goroutine can resume on another thread, and a compiler must never cache a TLS address
// across a switch (LESSONS.md #3).
P* current_p() noexcept;
Runtime* current_runtime() noexcept;  // the runtime of this process's active run, if any
G* current_g_for_signal() noexcept;

// Releases a dead goroutine's resources (called on g0 after it switched away for good).
void free_goroutine(P* p, G* g) noexcept;

// The life of a G (scheduler.cpp).
G* new_goroutine(P* p, std::size_t size, std::size_t align, void** closure);
void commit_goroutine(Runtime* rt, G* g, void (*entry)(void*), const void* pc);
void worker_main(P* p);  // a worker thread's body: find_runnable -> execute until stopping
void execute(P* p, G* g);

// Finding work and idling (idle.cpp).
G* find_runnable(P* p);        // nullptr once the runtime is stopping
void wakep(Runtime* rt);       // wake an idle worker unless one is already spinning
void begin_stop(Runtime* rt);  // main returned or a fatal error: every worker leaves

// Fatal conditions (scheduler.cpp): print and exit(2), or record and stop under raise.
void fatal_panic(std::exception_ptr e) noexcept;
void fatal_deadlock(Runtime* rt) noexcept;
// Prints first_line, a blank line and the dump to stderr and exits with status 2, whatever
// OnFatal says (SIGQUIT, thread exhaustion: Go's throw, not a panic).
[[noreturn]] void fatal_exit(Runtime* rt, const std::string& first_line) noexcept;

// Sysmon and spare workers (sysmon.cpp).
void sysmon_wake(Runtime* rt) noexcept;
P* new_p(Runtime* rt, int index);  // a P with its fields set, no thread yet
void sysmon_start(Runtime* rt, bool handle_sigquit);
void sysmon_stop(Runtime* rt) noexcept;  // joins it; restores SIGQUIT's disposition
// A retaken worker back on g0: parks it on the spare list until sysmon needs a spare again
// (true: run on) or the runtime stops (false: the thread leaves).
bool retire_worker(P* p);
void wake_spares(Runtime* rt) GORO_REQUIRES(rt->sched_mu);  // begin_stop: spares leave
// A worker left the idle list (npidle decremented, seq_cst): wakes sysmon if it sleeps
// because every worker was idle.
inline void sysmon_note_busy(Runtime* rt) noexcept {
  if (rt->sysmon_idle.load(std::memory_order_seq_cst)) sysmon_wake(rt);
}
// "runtime: program exceeds N-thread limit" / "fatal error: thread exhaustion", exit 2.
[[noreturn]] void fatal_thread_exhaustion(Runtime* rt) noexcept;

// The dump (dump.cpp).
struct GoroutineRow {
  std::uint64_t id;
  GStatus status;
  WaitReason reason;
  std::int64_t since;
  const void* pc;
};
std::vector<GoroutineRow> snapshot_goroutines(Runtime* rt);
void write_dump(Runtime* rt, std::string& out);
// A creation site as the dump prints it ("file.cpp:42 in f"); slow (runs addr2line).
std::string symbolise(const void* pc);
const char* wait_reason_text(WaitReason r) noexcept;

// Timers (timer.cpp), driven by the workers. Without a Runtime argument they act on the
// active run's heap (on a worker, or a thread inside a ForeignScope); outside a run,
// timers_next_when/timers_armed report the pending heap.
std::int64_t timers_next_when() noexcept;  // INT64_MAX when none
std::size_t timers_armed() noexcept;
void run_due_timers(std::int64_t now) noexcept;
inline std::int64_t timers_next_when(const Runtime* rt) noexcept { return rt->timers.next_when(); }
void run_due_timers(Runtime* rt, std::int64_t now) noexcept;

// Channels (chan.cpp): detach an abandoned goroutine's waiters at the end of run.
void detach_chan_waiters(G* g) noexcept;

// A thread that is not a worker (a foreign thread, a blocking() helper) inside an operation
// that may touch goroutine stacks or the runtime (a channel operation, ready()). The end of
// run() waits until no such operation is in flight before it releases stacks and the
// runtime, so a foreign try_send racing with the end of run never touches freed memory.
// On a worker thread it does nothing (the worker itself keeps the runtime alive).
class ForeignScope {
 public:
  ForeignScope() noexcept;
  ~ForeignScope();
  ForeignScope(const ForeignScope&) = delete;
  ForeignScope& operator=(const ForeignScope&) = delete;

 private:
  bool active_;
};

// Wakes one idle worker so that it runs the deadlock check again (a blocking() call or the
// last ForeignThread went away while every worker slept).
void recheck_deadlock(Runtime* rt) noexcept;

// Wakes an idle worker so that it re-reads the timer deadline (a new earliest timer).
void wake_for_timer() noexcept;

}  // namespace goro::detail
