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
// The files of the scheduler: scheduler.cpp (this one: switching, parking, spawning, the
// life of a G), runq.* (run queues), idle.cpp (finding work, idle workers, deadlock
// detection), runtime.cpp (run() from start to teardown, fatal reports, foreign threads).
#include "scheduler.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "goro/runtime.hpp"
#include "runq.hpp"

namespace goro::detail {

namespace {

// initial-exec: goro is linked into executables (or preloaded libraries); the general-dynamic
// model would call __tls_get_addr on every access.
__attribute__((tls_model("initial-exec"))) thread_local P* tl_p = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local G* tl_g = nullptr;

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
  // Sysmon handed this worker's queue to a spare: retire on g0 instead of running on.
  if (p->retaken.load(std::memory_order_relaxed)) return nullptr;
  const std::uint32_t tick = p->sched_tick + 1;
  // g0's find_runnable takes this tick and looks at the global queue first.
  if (tick % 61 == 0) return nullptr;
  // Timers run on g0; while any is armed, pass through g0 every 16th switch (clock reads
  // cost as much as a switch, so not on every one).
  if ((tick & 15) == 0 && timers_next_when(p->rt) != kNever) return nullptr;
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
    p->current.store(next, std::memory_order_relaxed);
    p->switches.store(p->switches.load(std::memory_order_relaxed) + 2, std::memory_order_relaxed);
    tl_g = next;
    next->status.store(GStatus::running, std::memory_order_relaxed);
    switch_context(g->ctx, next->ctx, exiting);
  } else {
    *eh = p->g0_eh;
    p->current.store(nullptr, std::memory_order_relaxed);
    p->switches.store(p->switches.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
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

}  // namespace

// g0 runs g until control comes back to g0 (from g, or from a goroutine g switched to).
void execute(P* p, G* g) {
  p->current.store(g, std::memory_order_relaxed);
  p->switches.store(p->switches.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
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
  while (G* g = find_runnable(p)) {
    execute(p, g);
    // Sysmon gave this worker's queue to a spare while the goroutine kept the thread: now
    // that it has let go, one worker too many runs, and it is this one.
    if (p->retaken.load(std::memory_order_relaxed) && !retire_worker(p)) break;
  }
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

// ---- the runtime's interface (core.hpp, scheduler.hpp) ----

[[gnu::noinline]] P* current_p() noexcept { return tl_p; }
[[gnu::noinline]] G* current_g() noexcept { return tl_g; }
G* current_g_for_signal() noexcept { return tl_g; }
std::int64_t monotonic_ns() noexcept { return now_ns(); }

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
  G* g = p != nullptr ? p->current.load(std::memory_order_relaxed) : nullptr;
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

}  // namespace goro
