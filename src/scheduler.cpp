// goro: the scheduler. The life of a goroutine, top to bottom:
//
//   1. go(f) -> spawn_reserve: take a stack from the worker's cache, place the G at its top
//      and the closure below it; spawn_commit: make its context, register it, put it in the
//      worker's runnext slot (as Go's newproc does) and wake an idle worker if nobody spins.
//   2. A worker's scheduler context (g0) loops in find_runnable -> execute: runnext, local
//      queue, the global queue (first every 61st tick, for fairness), due timers, stealing
//      half of a victim's queue, and finally sleeping on its futex until woken or the next
//      timer is due.
//   3. execute switches to the goroutine. It runs until it parks (a channel, lock, timer,
//      blocking call), yields or returns; each of these switches straight to the next
//      goroutine of the worker's queue (or back to g0 when the queue is empty or g0 has
//      checks to make), and the context that takes over finishes the step the goroutine
//      asked for (AfterSwitch): run the unlock function of a park, requeue a yield, or free
//      the stack of a goroutine that returned. See "switching" below.
//   4. park(unlock) is the one race that matters: the goroutine publishes itself as a
//      waiter under a lock, switches away, and only the context that took over releases
//      the lock. A waker that takes the lock therefore always finds the goroutine off its stack;
//      ready(g) puts it in the waker's runnext slot, so a hand-off runs next on the same worker.
//   5. When main (goroutine 1) returns, the runtime stops: idle workers are woken and every
//      worker leaves its loop at its next schedule; run() joins them and releases every
//      stack. Goroutines still parked are never resumed.
//
// Idle workers and lost wake-ups: a worker going idle first publishes itself (idle list,
// npidle++), then re-checks every run queue; a waker first publishes work, then checks
// npidle. Both use sequentially consistent operations, so at least one sees the other.
//
// Deadlock (Go's checkdead): a worker that is about to sleep while every worker is idle, no
// timer is armed, no goroutine is in blocking() or I/O wait, no ForeignThread is registered
// and no goroutine is queued reports "all goroutines are asleep". Whatever ends one of those
// external conditions (a blocking() call returning, the last ForeignThread going away) wakes
// an idle worker to run the check again, so the verdict is exact and never time-based.
//
// Lifetimes at the end of a run (run_main): the workers are joined, then g_runtime is
// cleared (from then on ready() from any thread does nothing), the blocking pool is
// stopped (its calls still running are waited for), abandoned goroutines are detached from
// channels and the wait table, and then run() waits for foreign operations in flight
// (ForeignScope) before it releases stacks and the Runtime. A foreign operation that
// starts after the detach can no longer reach a goroutine's stack.
#include "scheduler.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "goro/runtime.hpp"
#include "sema.hpp"

namespace goro::detail {

namespace {

// initial-exec: goro is linked into executables (or preloaded libraries); the general-dynamic
// model would call __tls_get_addr on every access.
__attribute__((tls_model("initial-exec"))) thread_local P* tl_p = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local G* tl_g = nullptr;
std::atomic<Runtime*> g_runtime{nullptr};
std::mutex g_run_mu;  // runs are sequential
std::atomic<std::uint64_t> g_run_seq{0};
// Foreign operations in flight (ForeignScope); the end of run waits for zero.
std::atomic<std::int64_t> g_foreign_inflight{0};
// The first fatal report (panic, deadlock) wins; later ones never print.
std::atomic<bool> g_dying{false};

constexpr std::int64_t kNever = INT64_MAX;

// ---- run queues ----

void global_put_batch(Runtime* rt, G** batch, std::uint32_t n) {
  for (std::uint32_t i = 0; i + 1 < n; ++i) batch[i]->sched_next = batch[i + 1];
  batch[n - 1]->sched_next = nullptr;
  LockGuard guard(rt->sched_mu);
  if (rt->gq_tail) {
    rt->gq_tail->sched_next = batch[0];
  } else {
    rt->gq_head = batch[0];
  }
  rt->gq_tail = batch[n - 1];
  rt->gq_size.fetch_add(n, std::memory_order_seq_cst);
}

void global_put(Runtime* rt, G* g) { global_put_batch(rt, &g, 1); }

// Moves half of a full local queue (and g) to the global queue.
bool runq_put_slow(P* p, G* g, std::uint32_t head, std::uint32_t tail) {
  G* batch[kRunQueueSize / 2 + 1];
  std::uint32_t n = (tail - head) / 2;
  for (std::uint32_t i = 0; i < n; ++i) {
    batch[i] = p->runq[(head + i) % kRunQueueSize].load(std::memory_order_relaxed);
  }
  if (!p->runq_head.compare_exchange_strong(head, head + n, std::memory_order_release,
                                            std::memory_order_relaxed)) {
    return false;
  }
  batch[n] = g;
  global_put_batch(p->rt, batch, n + 1);
  return true;
}

void runq_put(P* p, G* g, bool next) {
  if (next) {
    G* old = p->runnext.exchange(g, std::memory_order_acq_rel);
    if (old == nullptr) return;
    g = old;  // the previous runnext goes to the tail
  }
  for (;;) {
    std::uint32_t head = p->runq_head.load(std::memory_order_acquire);
    std::uint32_t tail = p->runq_tail.load(std::memory_order_relaxed);
    if (tail - head < kRunQueueSize) {
      p->runq[tail % kRunQueueSize].store(g, std::memory_order_relaxed);
      p->runq_tail.store(tail + 1, std::memory_order_release);
      return;
    }
    if (runq_put_slow(p, g, head, tail)) return;
  }
}

G* runq_get(P* p) {
  // runnext wins (hand-offs stay hot), but not forever: two goroutines handing a value back
  // and forth would otherwise starve the rest of the queue on this worker (Go bounds this
  // with time-slice inheritance and preemption; we bound the streak).
  if (p->runnext_streak < 64 || p->runq_head.load(std::memory_order_relaxed) ==
                                    p->runq_tail.load(std::memory_order_relaxed)) {
    G* next = p->runnext.load(std::memory_order_relaxed);
    if (next != nullptr &&
        p->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire)) {
      ++p->runnext_streak;
      return next;
    }
  }
  p->runnext_streak = 0;
  for (;;) {
    std::uint32_t head = p->runq_head.load(std::memory_order_acquire);
    std::uint32_t tail = p->runq_tail.load(std::memory_order_relaxed);
    if (tail == head) return nullptr;
    G* g = p->runq[head % kRunQueueSize].load(std::memory_order_relaxed);
    if (p->runq_head.compare_exchange_strong(head, head + 1, std::memory_order_release,
                                             std::memory_order_relaxed)) {
      return g;
    }
  }
}

bool runq_empty(P* p) {
  return p->runq_head.load(std::memory_order_seq_cst) ==
             p->runq_tail.load(std::memory_order_seq_cst) &&
         p->runnext.load(std::memory_order_seq_cst) == nullptr;
}

// Takes half of victim's queue into batch; with steal_next, its runnext when that is all.
std::uint32_t runq_grab(P* victim, G** batch, bool steal_next) {
  for (;;) {
    std::uint32_t head = victim->runq_head.load(std::memory_order_acquire);
    std::uint32_t tail = victim->runq_tail.load(std::memory_order_acquire);
    std::uint32_t n = tail - head;
    n -= n / 2;
    if (n == 0) {
      if (steal_next) {
        G* next = victim->runnext.load(std::memory_order_relaxed);
        if (next == nullptr) return 0;
        // The victim is probably about to run it (a hand-off): give it a few microseconds
        // before taking it, as Go does, so ping-pong pairs stay on one worker.
        for (int i = 0; i < 2000 && victim->runnext.load(std::memory_order_relaxed) == next; ++i) {
          cpu_relax();
        }
        if (victim->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire)) {
          batch[0] = next;
          return 1;
        }
      }
      return 0;
    }
    if (n > kRunQueueSize / 2) continue;  // inconsistent snapshot
    for (std::uint32_t i = 0; i < n; ++i) {
      batch[i] = victim->runq[(head + i) % kRunQueueSize].load(std::memory_order_relaxed);
    }
    if (victim->runq_head.compare_exchange_strong(head, head + n, std::memory_order_acq_rel,
                                                  std::memory_order_relaxed)) {
      return n;
    }
  }
}

G* steal_work(P* p) {
  Runtime* rt = p->rt;
  G* batch[kRunQueueSize / 2];
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::uint32_t start = p->rand.below(static_cast<std::uint32_t>(rt->nprocs));
    for (int i = 0; i < rt->nprocs; ++i) {
      P* victim = rt->ps[(start + i) % rt->nprocs];
      if (victim == p) continue;
      std::uint32_t n = runq_grab(victim, batch, attempt == 3);
      if (n == 0) continue;
      for (std::uint32_t k = 0; k + 1 < n; ++k) runq_put(p, batch[k], false);
      return batch[n - 1];
    }
    if (rt->stopping.load(std::memory_order_relaxed)) return nullptr;
  }
  return nullptr;
}

G* global_get(P* p, std::uint32_t max) {
  Runtime* rt = p->rt;
  if (rt->gq_size.load(std::memory_order_relaxed) == 0) return nullptr;
  G* first = nullptr;
  G* extra = nullptr;
  {
    LockGuard guard(rt->sched_mu);
    std::size_t size = rt->gq_size.load(std::memory_order_relaxed);
    if (size == 0) return nullptr;
    std::size_t n = std::min<std::size_t>({size, size / rt->nprocs + 1, max});
    first = rt->gq_head;
    G* last = first;
    for (std::size_t i = 1; i < n; ++i) last = last->sched_next;
    rt->gq_head = last->sched_next;
    if (rt->gq_head == nullptr) rt->gq_tail = nullptr;
    rt->gq_size.fetch_sub(n, std::memory_order_relaxed);
    last->sched_next = nullptr;
    extra = first->sched_next;
  }
  while (extra != nullptr) {
    G* next = extra->sched_next;
    runq_put(p, extra, false);
    extra = next;
  }
  return first;
}

// ---- idle workers ----

P* idle_pop(Runtime* rt) GORO_REQUIRES(rt->sched_mu) {
  P* q = rt->idle_list;
  if (q != nullptr) {
    rt->idle_list = q->idle_next;
    q->idle = false;
    q->idle_next = nullptr;
    rt->npidle.fetch_sub(1, std::memory_order_seq_cst);
  }
  return q;
}

bool idle_remove(Runtime* rt, P* p) GORO_REQUIRES(rt->sched_mu) {
  if (!p->idle) return false;
  for (P** link = &rt->idle_list; *link != nullptr; link = &(*link)->idle_next) {
    if (*link == p) {
      *link = p->idle_next;
      break;
    }
  }
  p->idle = false;
  p->idle_next = nullptr;
  rt->npidle.fetch_sub(1, std::memory_order_seq_cst);
  return true;
}

void wake_worker(P* q) {
  q->wake_word.store(1, std::memory_order_release);
  futex_wake(&q->wake_word, 1);
}

// Wakes an idle worker to look for work, unless one is already looking (Go's wakep).
void wakep(Runtime* rt) {
  if (rt->npidle.load(std::memory_order_seq_cst) == 0) return;
  int expected = 0;
  if (!rt->nmspinning.compare_exchange_strong(expected, 1, std::memory_order_seq_cst)) return;
  P* q;
  {
    LockGuard guard(rt->sched_mu);
    q = idle_pop(rt);
  }
  if (q == nullptr) {
    rt->nmspinning.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  q->spinning.store(true, std::memory_order_relaxed);
  wake_worker(q);
}

void stop_spinning(P* p) {
  if (!p->spinning.load(std::memory_order_relaxed)) return;
  p->spinning.store(false, std::memory_order_relaxed);
  // The last spinner found work: there may be more, so start another spinner.
  if (p->rt->nmspinning.fetch_sub(1, std::memory_order_seq_cst) == 1) wakep(p->rt);
}

void begin_stop(Runtime* rt) {
  rt->stopping.store(true, std::memory_order_seq_cst);
  LockGuard guard(rt->sched_mu);
  while (P* q = idle_pop(rt)) wake_worker(q);
}

// Publishes p as idle, re-checks for work, checks for deadlock, sleeps.
void go_idle(P* p) {
  Runtime* rt = p->rt;
  {
    LockGuard guard(rt->sched_mu);
    if (rt->stopping.load(std::memory_order_relaxed) ||
        rt->gq_size.load(std::memory_order_relaxed) != 0) {
      return;
    }
    p->idle = true;
    p->idle_next = rt->idle_list;
    rt->idle_list = p;
    rt->npidle.fetch_add(1, std::memory_order_seq_cst);
  }
  bool was_spinning = p->spinning.exchange(false, std::memory_order_relaxed);
  if (was_spinning) rt->nmspinning.fetch_sub(1, std::memory_order_seq_cst);

  // Work published before our npidle++ may not have woken anyone: look once more.
  bool work = rt->gq_size.load(std::memory_order_seq_cst) != 0;
  for (int i = 0; i < rt->nprocs && !work; ++i) work = !runq_empty(rt->ps[i]);
  if (work) {
    LockGuard guard(rt->sched_mu);
    if (idle_remove(rt, p)) {
      p->spinning.store(true, std::memory_order_relaxed);
      rt->nmspinning.fetch_add(1, std::memory_order_seq_cst);
    }
    p->wake_word.store(0, std::memory_order_relaxed);
    return;
  }

  std::int64_t timeout = kNever;
  bool dead = false;
  {
    std::int64_t next_timer = timers_next_when();
    std::int64_t now = now_ns();
    LockGuard guard(rt->sched_mu);
    if (next_timer != kNever) {
      timeout = std::max<std::int64_t>(0, next_timer - now);
    } else if (p->idle && rt->npidle.load(std::memory_order_seq_cst) == rt->nprocs &&
               rt->nblocking.load(std::memory_order_seq_cst) == 0 &&
               rt->niowait.load(std::memory_order_seq_cst) == 0 &&
               rt->nforeign.load(std::memory_order_seq_cst) == 0 && rt->gq_head == nullptr &&
               !rt->stopping.load(std::memory_order_relaxed) && timers_armed() == 0) {
      idle_remove(rt, p);
      dead = true;
    }
  }
  if (dead) {
    fatal_deadlock(rt);  // returns only under OnFatal::raise, with the runtime stopping
    return;
  }
  if (timeout == kNever) {
    futex_wait(&p->wake_word, 0, nullptr);
  } else {
    timespec ts = to_timespec(timeout);
    futex_wait(&p->wake_word, 0, &ts);
  }
  LockGuard guard(rt->sched_mu);
  idle_remove(rt, p);  // timed out or woke spuriously: no longer idle
  p->wake_word.store(0, std::memory_order_relaxed);
}

G* found(P* p, G* g) {
  stop_spinning(p);
  return g;
}

G* find_runnable(P* p) {
  Runtime* rt = p->rt;
  for (;;) {
    p->clock_ns = coarse_now_ns();
    if (rt->stopping.load(std::memory_order_acquire)) return nullptr;
    std::int64_t next_timer = timers_next_when();
    if (next_timer != kNever) {
      std::int64_t now = now_ns();
      if (now >= next_timer) run_due_timers(now);
    }
    if (++p->sched_tick % 61 == 0) {
      if (G* g = global_get(p, 1)) return found(p, g);
    }
    if (G* g = runq_get(p)) return found(p, g);
    if (G* g = global_get(p, kRunQueueSize / 2)) return found(p, g);
    if (rt->nprocs > 1) {
      bool spinning = p->spinning.load(std::memory_order_relaxed);
      if (!spinning && 2 * rt->nmspinning.load(std::memory_order_relaxed) <
                           rt->nprocs - rt->npidle.load(std::memory_order_relaxed)) {
        p->spinning.store(true, std::memory_order_relaxed);
        rt->nmspinning.fetch_add(1, std::memory_order_seq_cst);
        spinning = true;
      }
      if (spinning) {
        if (G* g = steal_work(p)) return found(p, g);
      }
    }
    go_idle(p);
  }
}

// ---- switching ----
//
// A goroutine that parks, yields or exits switches *straight to the next goroutine* of its
// worker's queue when there is one (one context jump), and to the worker's scheduler
// context g0 only when g0 has to decide: the queue is empty, the runtime is stopping, it
// is the fairness tick for the global queue, or timers may be due. Either way the step the
// old goroutine asked for (p->after: release the lock it parked under, requeue it, free
// its stack) runs on the *new* context, right after the jump saved the old one
// (finish_prev). That is Go's gopark(unlockf) with the unlock moved to the far side of the
// switch, and it is what prevents lost wake-ups: the goroutine is published as a waiter
// under a lock, and the lock is released only once its context is saved and its stack is
// no longer in use, so a waker that takes the lock can only ever resume a goroutine that
// is fully switched out. (Boost.Context's ontop_fcontext would run the step on top of the
// target too; the target already runs code first thing on every resume — it stores the
// saved context — so the step runs there with no extra frame.)

EhState* thread_eh_state() noexcept { return reinterpret_cast<EhState*>(abi::__cxa_get_globals()); }

// Finishes what the goroutine that switched away on p asked for. Runs on the context that
// took over from it (g0, or the goroutine it switched to).
void finish_prev(P* p) noexcept {
  const AfterSwitch after = p->after;
  if (after == AfterSwitch::none) return;
  p->after = AfterSwitch::none;
  G* prev = p->prev;
  switch (after) {
    case AfterSwitch::park:
      if (p->unlock_fn != nullptr) p->unlock_fn(p->unlock_arg);
      break;
    case AfterSwitch::yield:
      runq_put(p, prev, false);
      break;
    case AfterSwitch::exit:
      free_goroutine(p, prev);
      break;
    case AfterSwitch::none:
      break;
  }
}

// The goroutine to switch to straight from one that leaves its worker, or nullptr when g0
// must decide.
G* direct_next(P* p) noexcept {
  if (p->rt->stopping.load(std::memory_order_relaxed)) return nullptr;
  const std::uint32_t tick = p->sched_tick + 1;
  // g0's find_runnable takes this tick and looks at the global queue first.
  if (tick % 61 == 0) return nullptr;
  // Timers run on g0; while any is armed, pass through g0 every 16th switch (clock reads
  // cost as much as a switch, so not on every one).
  if ((tick & 15) == 0 && timers_next_when() != kNever) return nullptr;
  p->sched_tick = tick;
  return runq_get(p);
}

// Leaves goroutine g (running on p), having set p->after; returns when g is resumed.
void switch_away(G* g, P* p, bool exiting) {
  char* sp = static_cast<char*>(__builtin_frame_address(0));
  if (sp < g->stack.low_water) g->stack.low_water = sp;
  if (!g->stack.guarded) {
    if (sp < g->stack.lo || !StackPool::canary_intact(g->stack)) report_stack_overflow(g->id);
  }
  p->prev = g;
  // Each goroutine carries its own exception state across switches (see G::eh).
  EhState* eh = p->eh_globals;
  g->eh = *eh;
  if (G* next = direct_next(p)) {
    *eh = next->eh;
    p->current = next;
    tl_g = next;
    next->status.store(GStatus::running, std::memory_order_relaxed);
    switch_context(g->ctx, next->ctx, exiting);
  } else {
    *eh = p->g0_eh;
    p->current = nullptr;
    tl_g = nullptr;
    switch_context(g->ctx, p->g0, exiting);
  }
  // Resumed, possibly on another worker: finish what the goroutine before us asked.
  finish_prev(current_p());
}

[[noreturn]] void goexit(G* g) {
  P* p = current_p();
  g->status.store(GStatus::dead, std::memory_order_relaxed);
  p->after = AfterSwitch::exit;
  switch_away(g, p, true);
  __builtin_unreachable();
}

void goroutine_main(bctx::transfer_t t) {
  G* g = current_g();
  finish_switch_self(t, g->ctx);
  finish_prev(current_p());
  try {
    g->entry(g->closure);
  } catch (...) {
    fatal_panic(std::current_exception());
  }
  if (g->id == 1) begin_stop(current_p()->rt);
  goexit(g);
}

// g0 runs g until control comes back to g0 (from g, or from a goroutine g switched to).
void execute(P* p, G* g) {
  p->current = g;
  tl_g = g;
  g->status.store(GStatus::running, std::memory_order_relaxed);
  EhState* eh = p->eh_globals;
  p->g0_eh = *eh;
  *eh = g->eh;
  switch_context(p->g0, g->ctx);
  finish_prev(p);  // the goroutine that came back already restored g0's exception state
}

void worker_main(P* p) {
  tl_p = p;
  p->eh_globals = thread_eh_state();  // per thread, so fixed for the worker's life
  init_thread_context(p->g0);
  p->altstack = install_overflow_handler();
  while (G* g = find_runnable(p)) execute(p, g);
  remove_overflow_handler(p->altstack);
  tl_p = nullptr;
}

// Places a new G (and room for its closure) at the top of a fresh stack.
G* new_goroutine(P* p, std::size_t size, std::size_t align, void** closure) {
  Runtime* rt = p->rt;
  Stack s = rt->stacks.acquire(p->stacks);
  if (size > s.size / 4) {
    rt->stacks.release(p->stacks, s);
    throw std::length_error("goro::go: the closure is too large for a goroutine stack");
  }
  G* g = ::new (static_cast<void*>(goroutine_in_slot(s.lo, s.size))) G();
  std::uintptr_t g_at = reinterpret_cast<std::uintptr_t>(g);
  g->stack = s;
  std::uintptr_t a = std::max<std::size_t>(align, 16);
  std::uintptr_t c_at = (g_at - size) & ~(a - 1);
  g->closure = reinterpret_cast<void*>(c_at);
  *closure = g->closure;
  return g;
}

void commit_goroutine(Runtime* rt, G* g, void (*entry)(void*), const void* pc) {
  g->entry = entry;
  g->creator_pc.store(pc, std::memory_order_relaxed);
  g->id.store(rt->next_id.fetch_add(1, std::memory_order_relaxed), std::memory_order_relaxed);
  std::uintptr_t usable_top = reinterpret_cast<std::uintptr_t>(g->closure) & ~std::uintptr_t{15};
  make_context(g->ctx, g->stack.lo, usable_top - reinterpret_cast<std::uintptr_t>(g->stack.lo),
               goroutine_main, g->stack.tsan_fiber);
  // ASan must see the whole mapping as this goroutine's stack.
  g->ctx.stack_size = g->stack.size;
  rt->live.fetch_add(1, std::memory_order_relaxed);
  g->live_magic.store(kLiveMagic, std::memory_order_release);
  g->status.store(GStatus::runnable, std::memory_order_relaxed);
}

int resolve_procs(int requested) {
  if (requested > 0) return requested;
  if (const char* env = std::getenv("GORO_MAXPROCS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0 && v <= 4096) return static_cast<int>(v);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

std::size_t resolve_stack_size(std::size_t requested) {
#if GORO_ASAN || GORO_TSAN
  constexpr std::size_t kScale = 4;  // sanitizers need bigger frames
#else
  constexpr std::size_t kScale = 1;
#endif
  std::size_t size = requested != 0 ? requested : 256 * 1024;
  return std::max<std::size_t>(size, 32 * 1024) * kScale;
}

std::string describe(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

[[noreturn]] void die_with(Runtime* rt, const std::string& first_line) {
  if (g_dying.exchange(true, std::memory_order_acq_rel)) {
    for (;;) pause();  // another goroutine's fatal report is being written: exit comes from it
  }
  std::string out = first_line + "\n\n";
  write_dump(rt, out);
  std::fflush(nullptr);
  const char* data = out.data();
  std::size_t left = out.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, data, left);
    if (n <= 0) break;
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  _exit(2);
}

void record_fatal(Runtime* rt, const std::string& first_line, std::exception_ptr panic) {
  std::string text = first_line + "\n\n";
  write_dump(rt, text);
  {
    LockGuard guard(rt->fatal_mu);
    if (!rt->fatal) {
      rt->fatal = true;
      rt->fatal_text = std::move(text);
      rt->panic = panic;
    }
  }
  begin_stop(rt);
}

}  // namespace

// ---- the runtime's interface (core.hpp, scheduler.hpp) ----

[[gnu::noinline]] P* current_p() noexcept { return tl_p; }
[[gnu::noinline]] G* current_g() noexcept { return tl_g; }
G* current_g_for_signal() noexcept { return tl_g; }
Runtime* current_runtime() noexcept { return g_runtime.load(std::memory_order_acquire); }
std::int64_t monotonic_ns() noexcept { return now_ns(); }

Runtime::Runtime(int procs, std::size_t stack_size) : nprocs(procs), stacks(stack_size) {}

G* require_goroutine(const char* op) {
  G* g = tl_g;  // this function is itself out of line: the TLS read is safe
  if (g == nullptr) {
    throw std::logic_error(std::string("goro: ") + op +
                           " called outside goro::run (it may park, so it needs a goroutine)");
  }
  return g;
}

void park(WaitReason reason, void (*unlock)(void*), void* arg) {
  P* p = current_p();
  G* g = p != nullptr ? p->current : nullptr;
  if (g == nullptr) require_goroutine("park");  // throws
  g->wait_reason.store(reason, std::memory_order_relaxed);
  // The worker's clock, refreshed at each pass through g0: reading a clock here would cost
  // as much as the rest of park, and the dump only shows waits from one second on.
  g->wait_since_ns.store(p->clock_ns, std::memory_order_relaxed);
  g->status.store(GStatus::waiting, std::memory_order_relaxed);
  p->after = AfterSwitch::park;
  p->unlock_fn = unlock;
  p->unlock_arg = arg;
  switch_away(g, p, false);
  g->wait_reason.store(WaitReason::none, std::memory_order_relaxed);
}

void park_forever(WaitReason reason) {
  park(reason, nullptr, nullptr);
  __builtin_trap();  // never woken
}

void park_unlock(WaitReason reason, Lock& mu) GORO_NO_TSA {
  park(
      reason, [](void* m) GORO_NO_TSA { static_cast<Lock*>(m)->unlock(); }, &mu);
}

void ready(G* g) noexcept {
  if (P* p = current_p()) {  // a worker: its runtime lives at least as long as it runs
    g->status.store(GStatus::runnable, std::memory_order_relaxed);
    runq_put(p, g, true);
    wakep(p->rt);
    return;
  }
  ForeignScope scope;
  Runtime* rt = current_runtime();
  if (rt == nullptr) return;  // the run is over: parked goroutines are never resumed
  g->status.store(GStatus::runnable, std::memory_order_relaxed);
  global_put(rt, g);
  wakep(rt);
}

ForeignScope::ForeignScope() noexcept : active_(current_p() == nullptr) {
  if (active_) g_foreign_inflight.fetch_add(1, std::memory_order_seq_cst);
}

ForeignScope::~ForeignScope() {
  if (active_) g_foreign_inflight.fetch_sub(1, std::memory_order_seq_cst);
}

void recheck_deadlock(Runtime* rt) noexcept {
  if (rt->npidle.load(std::memory_order_seq_cst) == 0) return;
  P* q;
  {
    LockGuard guard(rt->sched_mu);
    q = idle_pop(rt);
  }
  if (q != nullptr) wake_worker(q);
}

void wake_for_timer() noexcept {
  ForeignScope scope;
  if (Runtime* rt = current_runtime()) recheck_deadlock(rt);
}

G* spawn_reserve(std::size_t size, std::size_t align, void** closure) {
  require_goroutine("go");
  return new_goroutine(current_p(), size, align, closure);
}

void spawn_commit(G* g, void (*entry)(void*), const void* creator_pc) noexcept {
  P* p = current_p();
  Runtime* rt = p->rt;
  commit_goroutine(rt, g, entry, creator_pc);
  runq_put(p, g, true);
  wakep(rt);
  // A spawner that fills its worker's queue yields, so the goroutines it made can run and
  // give their stacks back (Go gets the same effect from preempting a long-running
  // goroutine). Without this, a loop of go() keeps every goroutine alive at once.
  std::uint32_t queued =
      p->runq_tail.load(std::memory_order_relaxed) - p->runq_head.load(std::memory_order_relaxed);
  if (queued >= kRunQueueSize - 1) goro::yield();
}

void spawn_abort(G* g) noexcept {
  P* p = current_p();
  p->rt->stacks.release(p->stacks, g->stack);
}

void free_goroutine(P* p, G* g) noexcept {
  Runtime* rt = p->rt;
  g->live_magic.store(0, std::memory_order_release);
  Stack s = g->stack;
  s.tsan_fiber = g->ctx.tsan_fiber;  // kept with the stack for the next goroutine (TSan)
  g->~G();
  rt->stacks.release(p->stacks, s);
  rt->live.fetch_sub(1, std::memory_order_relaxed);
}

void fatal_panic(std::exception_ptr e) noexcept {
  Runtime* rt = current_runtime();
  std::string line = "panic: " + describe(e);
  if (!rt->raise) die_with(rt, line);
  record_fatal(rt, line, e);
}

void fatal_deadlock(Runtime* rt) noexcept {
  const std::string line = "fatal error: all goroutines are asleep - deadlock!";
  if (!rt->raise) die_with(rt, line);
  record_fatal(rt, line, nullptr);
}

void run_main(const RunOptions& opts, void (*main_fn)(void*), void* arg) {
  if (current_g() != nullptr) {
    throw std::logic_error("goro::run: called from inside a goroutine");
  }
  std::unique_lock<std::mutex> one_run(g_run_mu, std::try_to_lock);
  if (!one_run.owns_lock()) {
    throw std::logic_error("goro::run: another run is active (runs must be sequential)");
  }
  const int nprocs = resolve_procs(opts.procs);
  auto rt = std::make_unique<Runtime>(nprocs, resolve_stack_size(opts.stack_size));
  rt->raise = opts.raise;
  rt->run_seq = g_run_seq.fetch_add(1, std::memory_order_relaxed) + 1;
  for (int i = 0; i < nprocs; ++i) {
    P* p = new P();
    p->index = i;
    p->rt = rt.get();
    p->rand.state ^= (static_cast<std::uint64_t>(i) + 1) * 0xD1B54A32D192ED03ull ^
                     static_cast<std::uint64_t>(now_ns());
    rt->ps.push_back(p);
  }

  struct MainClosure {
    void (*fn)(void*);
    void* arg;
    void operator()() const { fn(arg); }
  };
  P* p0 = rt->ps[0];
  void* where = nullptr;
  G* main_g = new_goroutine(p0, sizeof(MainClosure), alignof(MainClosure), &where);
  ::new (where) MainClosure{main_fn, arg};
  commit_goroutine(rt.get(), main_g, &closure_entry<MainClosure>, __builtin_return_address(0));
  runq_put(p0, main_g, false);

  g_runtime.store(rt.get(), std::memory_order_release);
  for (P* p : rt->ps) p->thread = std::thread(worker_main, p);
  for (P* p : rt->ps) p->thread.join();
  g_runtime.store(nullptr, std::memory_order_seq_cst);

  // Teardown: nothing of this run keeps running; abandoned goroutines are released.
  stop_blocking_pool();
  clear_timers();
  rt->stacks.for_each_slot([](char* lo, std::size_t size) {
    G* g = goroutine_in_slot(lo, size);
    if (g->live_magic.load(std::memory_order_acquire) != kLiveMagic) return;
    detach_chan_waiters(g);
    destroy_context(g->ctx);
    g->live_magic.store(0, std::memory_order_relaxed);
  });
  sema_clear_all();
  // Foreign operations that started before the detach may still write into a waiter's
  // stack slot or read the runtime: let them finish before anything is unmapped.
  while (g_foreign_inflight.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  for (P* p : rt->ps) {
    rt->stacks.drain(p->stacks);
    delete p;
  }
  rt->ps.clear();

  bool fatal;
  std::string text;
  std::exception_ptr panic;
  {
    LockGuard guard(rt->fatal_mu);
    fatal = rt->fatal;
    text = rt->fatal_text;
    panic = rt->panic;
  }
  rt.reset();  // unmaps every stack
  one_run.unlock();
  if (!fatal) return;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (!panic) throw goro::Deadlock(text);
  try {
    std::rethrow_exception(panic);
  } catch (...) {
    throw goro::Panic(text);  // nests the original exception
  }
}

}  // namespace goro::detail

namespace goro {

void yield() {
  detail::G* g = detail::require_goroutine("yield");
  detail::P* p = detail::current_p();
  g->status.store(detail::GStatus::runnable, std::memory_order_relaxed);
  p->after = detail::AfterSwitch::yield;
  detail::switch_away(g, p, false);
}

std::uint64_t goroutine_id() {
  detail::G* g = detail::current_g();
  return g ? g->id.load(std::memory_order_relaxed) : 0;
}

std::size_t num_goroutines() {
  detail::Runtime* rt = detail::current_runtime();
  return rt ? static_cast<std::size_t>(rt->live.load(std::memory_order_relaxed)) : 0;
}

int procs() {
  detail::Runtime* rt = detail::current_runtime();
  return rt ? rt->nprocs : 0;
}

ForeignThread::ForeignThread() {
  detail::ForeignScope scope;
  detail::Runtime* rt = detail::current_runtime();
  if (rt == nullptr) {
    throw std::logic_error("goro::ForeignThread: created outside goro::run");
  }
  rt->nforeign.fetch_add(1, std::memory_order_seq_cst);
  run_seq_ = rt->run_seq;
}

ForeignThread::ForeignThread(ForeignThread&& other) noexcept
    : run_seq_(std::exchange(other.run_seq_, 0)) {}

ForeignThread& ForeignThread::operator=(ForeignThread&& other) noexcept {
  if (this != &other) {
    release();
    run_seq_ = std::exchange(other.run_seq_, 0);
  }
  return *this;
}

ForeignThread::~ForeignThread() { release(); }

void ForeignThread::release() noexcept {
  if (run_seq_ == 0) return;
  const std::uint64_t seq = std::exchange(run_seq_, 0);
  detail::ForeignScope scope;
  detail::Runtime* rt = detail::current_runtime();
  if (rt == nullptr || rt->run_seq != seq) return;  // its run is over
  // The last registration gone: goroutines it might have woken may now be deadlocked.
  if (rt->nforeign.fetch_sub(1, std::memory_order_seq_cst) == 1) detail::recheck_deadlock(rt);
}

void dump(std::ostream& out) {
  detail::Runtime* rt = detail::current_runtime();
  if (rt == nullptr) return;
  std::string text;
  detail::write_dump(rt, text);
  out << text;
}

}  // namespace goro
