// goro: timers, sleep, after, Timer and Ticker (see timer.hpp for the invariants).
#include "timer.hpp"

#include <stdexcept>
#include <utility>
#include <vector>

#include "chan.hpp"
#include "goro/detail/lock.hpp"
#include "platform.hpp"
#include "scheduler.hpp"

namespace goro::detail {

static_assert(kNoTimer == kNever);

namespace {

// Timers armed while no run is active; the next run adopts them (timer.hpp).
TimerHeap& pending_timers() {
  static TimerHeap* heap = new TimerHeap(LockRank::timer_pending);  // never destroyed
  return *heap;
}

void release(TimerNode* t) noexcept {
  if (t->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete t;
}

// sleep's park steps (run on the scheduler context): they read nothing but the heap, which
// its run keeps alive.
void unlock_heap(void* heap) GORO_NO_TSA { static_cast<TimerHeap*>(heap)->mu.unlock(); }
void unlock_heap_and_wake(void* heap) GORO_NO_TSA {
  static_cast<TimerHeap*>(heap)->mu.unlock();
  wake_for_timer();
}

// Parks the sleeping goroutine, releasing h.mu on the scheduler after the switch. Once the
// lock is released the timer may fire on another worker and the sleeper run on, so the
// step must not read anything on the sleeper's stack: whether to wake a worker is chosen
// here, by picking the function, and the argument is the heap itself (the run's, alive
// until every worker has left).
void park_on_heap(TimerHeap& h, bool first) GORO_RELEASE(h.mu) GORO_NO_TSA {
  park(WaitReason::sleep, first ? &unlock_heap_and_wake : &unlock_heap, &h);
}

// The channel's on_last_user hook: its last user handle is gone, so nobody can receive what
// t would deliver. Stop t and drop the channel's reference to it (Go 1.23 collects such
// timers the same way). Runs inside chan_unref, from any thread, with no runtime lock held;
// releasing t may free it, which drops the channel's last reference and frees the channel.
void timer_chan_unused(void* arg) noexcept {
  auto* t = static_cast<TimerNode*>(arg);
  timer_stop(t);
  release(t);
}

std::int64_t deadline_after(Clock::duration d) {
  std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  std::int64_t now = now_ns();
  return ns > kNever - now ? kNever - 1 : now + ns;
}

void send_time(TimerNode* t, std::int64_t now) noexcept {
  Clock::time_point tp{std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(now))};
  try {
    chan_try_send(t->chan.get(), &tp);  // a full channel drops the tick, as Go's does
  } catch (...) {
  }
}

void fire(TimerNode* t, std::int64_t now) noexcept {
  switch (t->kind) {
    case TimerNode::Kind::sleep:
      ready(t->g);  // last touch: the node lives on that goroutine's stack
      return;
    case TimerNode::Kind::chan:
      send_time(t, now);
      return;
    case TimerNode::Kind::func:
      t->fn();
      return;
  }
}

// Takes t out of whatever heap holds it. Returns whether it was armed; the heap's reference
// (owned nodes) passes to the caller then. Inside a ForeignScope (the caller's), so a run's
// heap cannot be freed under us.
bool unarm(TimerNode* t) noexcept {
  for (;;) {
    TimerHeap* h = t->home.load(std::memory_order_acquire);
    if (h == nullptr) return false;
    LockGuard guard(h->mu);
    if (h->remove(t)) return true;
    // Moved between our read and the lock (adopted by a starting run, or fired): look again.
  }
}

// Arms t to fire at `when` (then every `period` if > 0) in the active run's heap, or in the
// pending heap when no run is active. Re-arming within one heap is one step under its lock,
// so a concurrent stop sees the timer armed throughout. The heap's reference (owned nodes)
// is taken before t enters a heap: the caller holds one too, but a worker may fire t and
// drop the heap's the moment the lock is released. Wakes a worker if t became the earliest
// timer. Returns whether t was armed before.
bool arm(TimerNode* t, std::int64_t when, std::int64_t period) {
  ForeignScope foreign;  // a foreign thread may be racing the end of run
  bool was_armed = false;
  bool heap_ref = false;  // we hold the reference the heap will own
  bool first = false;
  for (;;) {
    Runtime* rt = current_runtime();
    TimerHeap& target = rt ? rt->timers : pending_timers();
    TimerHeap* home = t->home.load(std::memory_order_acquire);
    if (home != nullptr && home != &target) {  // still in the pending heap as a run starts
      LockGuard guard(home->mu);
      if (home->remove(t)) was_armed = heap_ref = true;
      continue;
    }
    LockGuard guard(target.mu);
    // A run that starts adopts the pending heap under its lock after being published: seen
    // from under that lock, either the run is visible (use its heap) or it adopts t later.
    if (rt == nullptr && current_runtime() != nullptr) continue;
    if (target.remove(t)) {
      was_armed = heap_ref = true;
    } else if (t->home.load(std::memory_order_acquire) != nullptr) {
      continue;  // armed elsewhere meanwhile
    }
    if (!heap_ref && t->owned) {
      t->refs.fetch_add(1, std::memory_order_relaxed);
      heap_ref = true;
    }
    if (target.add(t, when, period, &first)) {
      first = first && rt != nullptr;  // no worker to wake for the pending heap
      break;
    }
    // Closed: the run is ending, and current_runtime() already reads nullptr.
  }
  if (first) wake_for_timer();
  return was_armed;
}

}  // namespace

std::int64_t timers_next_when() noexcept {
  Runtime* rt = current_runtime();
  return rt ? rt->timers.next_when() : pending_timers().next_when();
}

std::size_t timers_armed() noexcept {
  Runtime* rt = current_runtime();
  return rt ? rt->timers.armed() : pending_timers().armed();
}

void run_due_timers(std::int64_t now) noexcept {
  if (Runtime* rt = current_runtime()) run_due_timers(rt, now);
}

void run_due_timers(Runtime* rt, std::int64_t now) noexcept {
  TimerHeap& h = rt->timers;
  for (;;) {
    TimerNode* due[32];
    std::size_t n;
    {
      LockGuard guard(h.mu);
      n = h.take_due(now, due, 32);
    }
    for (std::size_t i = 0; i < n; ++i) {
      TimerNode* t = due[i];
      bool owned = t->owned;
      fire(t, now);
      if (owned) release(t);  // the heap's (one-shot) or the one take_due gave us (ticker)
    }
    if (n < 32) return;
  }
}

void adopt_pending_timers(Runtime* rt) noexcept {
  TimerHeap& pending = pending_timers();
  LockGuard outer(pending.mu);
  LockGuard inner(rt->timers.mu);
  rt->timers.adopt(pending);
}

void clear_timers(Runtime* rt) noexcept {
  std::vector<TimerNode*> owned;
  {
    TimerHeap& h = rt->timers;
    LockGuard guard(h.mu);
    h.close();
    h.drain([&owned](TimerNode* t) {
      if (t->owned) owned.push_back(t);
    });
  }
  for (TimerNode* t : owned) {
    // A function timer may hold what holds it (a Context's deadline timer holds the
    // context, which holds the timer): drop the function, which will never run now.
    std::function<void()> fn = std::move(t->fn);
    release(t);
  }
}

TimerNode* timer_new_func(std::function<void()> fn, std::int64_t when_ns) {
  auto* t = new TimerNode();
  t->kind = TimerNode::Kind::func;
  t->fn = std::move(fn);
  arm(t, when_ns, 0);
  return t;
}

TimerNode* timer_new(const Chan<Clock::time_point>& ch, Clock::duration first,
                     Clock::duration period) {
  auto* t = new TimerNode();
  t->kind = TimerNode::Kind::chan;
  ChanCore* core = ChanAccess::core(ch);
  chan_ref(core);
  t->chan = ChanHandle(core);
  // The channel holds a reference to t until its last user handle goes (timer_chan_unused).
  // Nobody else has the channel yet (ch is the creator's), so plain writes publish the hook.
  t->refs.fetch_add(1, std::memory_order_relaxed);
  core->on_last_user_arg = t;
  core->on_last_user = &timer_chan_unused;
  const std::int64_t p = std::chrono::duration_cast<std::chrono::nanoseconds>(period).count();
  if (first <= Clock::duration::zero()) {
    send_time(t, now_ns());
    if (p > 0) arm(t, deadline_after(period), p);
  } else {
    arm(t, deadline_after(first), p);
  }
  return t;
}

void timer_release(TimerNode* t) noexcept { release(t); }

bool timer_stop(TimerNode* t) noexcept {
  ForeignScope foreign;  // a foreign thread may be racing the end of run
  const bool was_armed = unarm(t);
  if (was_armed && t->owned) release(t);  // the heap's reference
  return was_armed;
}

bool timer_reset(TimerNode* t, Clock::duration first, Clock::duration period) {
  const std::int64_t p = std::chrono::duration_cast<std::chrono::nanoseconds>(period).count();
  if (first <= Clock::duration::zero() && p == 0) {
    const bool was_armed = timer_stop(t);
    send_time(t, now_ns());
    return was_armed;
  }
  return arm(t, deadline_after(first <= Clock::duration::zero() ? period : first), p);
}

}  // namespace goro::detail

namespace goro {

void sleep(Clock::duration d) {
  detail::require_goroutine("goro::sleep");
  if (d <= Clock::duration::zero()) return;
  detail::TimerNode node;
  node.owned = false;
  node.kind = detail::TimerNode::Kind::sleep;
  node.g = detail::current_g();
  // Inside a goroutine the run is active and its heap open (it closes after the workers
  // are joined), so add() cannot refuse.
  detail::TimerHeap& h = detail::current_p()->rt->timers;
  h.mu.lock();
  bool first = false;
  h.add(&node, detail::deadline_after(d), 0, &first);
  detail::park_on_heap(h, first);
}

RecvChan<Clock::time_point> after(Clock::duration d) {
  Chan<Clock::time_point> ch(1);
  detail::TimerNode* t = detail::timer_new(ch, d, Clock::duration::zero());
  detail::timer_release(t);  // the heap keeps it alive until it fires
  return ch;
}

Timer::Timer(Clock::duration d)
    : ch_(1), node_(detail::timer_new(ch_, d, Clock::duration::zero())) {}
Timer::~Timer() {
  if (node_) detail::timer_release(node_);  // still fires into chan(), as Go's does
}
Timer::Timer(Timer&& o) noexcept : ch_(std::move(o.ch_)), node_(std::exchange(o.node_, nullptr)) {}
Timer& Timer::operator=(Timer&& o) noexcept {
  if (this != &o) {
    if (node_) detail::timer_release(node_);
    ch_ = std::move(o.ch_);
    node_ = std::exchange(o.node_, nullptr);
  }
  return *this;
}
bool Timer::stop() { return node_ ? detail::timer_stop(node_) : false; }
bool Timer::reset(Clock::duration d) {
  if (!node_) throw std::logic_error("goro::Timer: reset of a moved-from Timer");
  return detail::timer_reset(node_, d, Clock::duration::zero());
}

namespace {
void check_period(Clock::duration period) {
  if (period <= Clock::duration::zero()) {
    throw std::invalid_argument("non-positive interval for Ticker");
  }
}
}  // namespace

Ticker::Ticker(Clock::duration period) : ch_(nullptr), node_(nullptr) {
  check_period(period);
  ch_ = Chan<Clock::time_point>(1);
  node_ = detail::timer_new(ch_, period, period);
}
Ticker::~Ticker() {
  if (node_) {
    detail::timer_stop(node_);
    detail::timer_release(node_);
  }
}
Ticker::Ticker(Ticker&& o) noexcept
    : ch_(std::move(o.ch_)), node_(std::exchange(o.node_, nullptr)) {}
Ticker& Ticker::operator=(Ticker&& o) noexcept {
  if (this != &o) {
    if (node_) {
      detail::timer_stop(node_);
      detail::timer_release(node_);
    }
    ch_ = std::move(o.ch_);
    node_ = std::exchange(o.node_, nullptr);
  }
  return *this;
}
void Ticker::stop() {
  if (node_) detail::timer_stop(node_);
}
void Ticker::reset(Clock::duration period) {
  check_period(period);
  if (!node_) throw std::logic_error("goro::Ticker: reset of a moved-from Ticker");
  detail::timer_reset(node_, period, period);
}

}  // namespace goro
