// goro: timers, sleep, after, Timer and Ticker (see timer.hpp for the invariants).
#include "timer.hpp"

#include <stdexcept>
#include <vector>

#include "chan.hpp"
#include "goro/detail/lock.hpp"
#include "platform.hpp"
#include "scheduler.hpp"

namespace goro::detail {

namespace {

constexpr std::int64_t kNever = INT64_MAX;

struct TimerHeap {
  Lock mu{LockRank::timer_heap};
  std::vector<TimerNode*> heap GORO_GUARDED_BY(mu);
  std::atomic<std::int64_t> next_when{kNever};
  std::atomic<std::size_t> armed{0};

  bool less(std::size_t a, std::size_t b) const GORO_NO_TSA {
    return heap[a]->when < heap[b]->when;
  }
  void place(std::size_t i, TimerNode* t) GORO_NO_TSA {
    heap[i] = t;
    t->heap_index = static_cast<std::int32_t>(i);
  }
  void swap(std::size_t a, std::size_t b) GORO_NO_TSA {
    TimerNode* ta = heap[a];
    place(a, heap[b]);
    place(b, ta);
  }
  void sift_up(std::size_t i) GORO_NO_TSA {
    while (i > 0) {
      std::size_t parent = (i - 1) / 2;
      if (!less(i, parent)) break;
      swap(i, parent);
      i = parent;
    }
  }
  void sift_down(std::size_t i) GORO_NO_TSA {
    for (;;) {
      std::size_t l = 2 * i + 1;
      std::size_t r = l + 1;
      std::size_t m = i;
      if (l < heap.size() && less(l, m)) m = l;
      if (r < heap.size() && less(r, m)) m = r;
      if (m == i) return;
      swap(i, m);
      i = m;
    }
  }
  void publish() GORO_REQUIRES(mu) {
    next_when.store(heap.empty() ? kNever : heap[0]->when, std::memory_order_seq_cst);
    armed.store(heap.size(), std::memory_order_seq_cst);
  }
  // Returns true when t became the earliest timer.
  bool add(TimerNode* t, std::int64_t when) GORO_REQUIRES(mu) {
    t->when = when;
    heap.push_back(t);
    t->heap_index = static_cast<std::int32_t>(heap.size() - 1);
    sift_up(heap.size() - 1);
    publish();
    return t->heap_index == 0;
  }
  bool remove(TimerNode* t) GORO_REQUIRES(mu) {
    if (t->heap_index < 0) return false;
    std::size_t i = static_cast<std::size_t>(t->heap_index);
    std::size_t last = heap.size() - 1;
    if (i != last) {
      place(i, heap[last]);
      heap.pop_back();
      sift_down(i);
      sift_up(i);
    } else {
      heap.pop_back();
    }
    t->heap_index = -1;
    publish();
    return true;
  }
};

TimerHeap& timers() {
  static TimerHeap* heap = new TimerHeap();  // never destroyed: workers may outlive statics
  return *heap;
}

void release(TimerNode* t) noexcept {
  if (t->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete t;
}

// sleep's park steps (run on the scheduler context): they read nothing but the heap.
void unlock_heap(void* heap) GORO_NO_TSA { static_cast<TimerHeap*>(heap)->mu.unlock(); }
void unlock_heap_and_wake(void* heap) GORO_NO_TSA {
  static_cast<TimerHeap*>(heap)->mu.unlock();
  wake_for_timer();
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

// Arms t (taking a heap reference if it had none) with the given period (written under the
// heap lock: workers read it there) and wakes a worker if t is now first.
// Returns whether t was armed before.
bool arm(TimerNode* t, std::int64_t when, std::int64_t period) {
  bool first;
  bool was_armed;
  {
    TimerHeap& h = timers();
    LockGuard guard(h.mu);
    was_armed = h.remove(t);
    t->period = period;
    if (!was_armed && t->owned) t->refs.fetch_add(1, std::memory_order_relaxed);
    first = h.add(t, when);
  }
  if (first) wake_for_timer();
  return was_armed;
}

}  // namespace

std::int64_t timers_next_when() noexcept {
  return timers().next_when.load(std::memory_order_seq_cst);
}

std::size_t timers_armed() noexcept { return timers().armed.load(std::memory_order_seq_cst); }

void run_due_timers(std::int64_t now) noexcept {
  TimerHeap& h = timers();
  for (;;) {
    TimerNode* due[32];
    std::size_t n = 0;
    {
      LockGuard guard(h.mu);
      while (n < 32 && !h.heap.empty() && h.heap[0]->when <= now) {
        TimerNode* t = h.heap[0];
        if (t->period > 0) {
          // A ticker stays in the heap; skip the ticks that are already late.
          t->when += t->period * (1 + (now - t->when) / t->period);
          h.sift_down(0);
          t->refs.fetch_add(1, std::memory_order_relaxed);
        } else {
          h.remove(t);  // the heap's reference passes to us
        }
        due[n++] = t;
      }
      h.publish();
    }
    for (std::size_t i = 0; i < n; ++i) {
      TimerNode* t = due[i];
      bool owned = t->owned;
      fire(t, now);
      if (owned) release(t);
    }
    if (n < 32) return;
  }
}

void clear_timers() noexcept {
  std::vector<TimerNode*> owned;
  {
    TimerHeap& h = timers();
    LockGuard guard(h.mu);
    for (TimerNode* t : h.heap) {
      t->heap_index = -1;
      if (t->owned) owned.push_back(t);
    }
    h.heap.clear();
    h.publish();
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
  t->period = p;  // t is not shared yet
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
  bool was_armed;
  {
    TimerHeap& h = timers();
    LockGuard guard(h.mu);
    was_armed = h.remove(t);
  }
  if (was_armed && t->owned) release(t);  // the heap's reference
  return was_armed;
}

bool timer_reset(TimerNode* t, Clock::duration first, Clock::duration period) {
  // t->period is read by whichever worker fires t, under the heap lock: only arm() (or the
  // stop below, for a timer that is never re-armed) writes it, under that lock.
  const std::int64_t p = std::chrono::duration_cast<std::chrono::nanoseconds>(period).count();
  if (first <= Clock::duration::zero() && p == 0) {
    bool was_armed;
    {
      TimerHeap& h = timers();
      LockGuard guard(h.mu);
      was_armed = h.remove(t);
      t->period = 0;
    }
    if (was_armed && t->owned) release(t);  // the heap's reference
    send_time(t, now_ns());
    return was_armed;
  }
  return arm(t, deadline_after(first <= Clock::duration::zero() ? period : first), p);
}

}  // namespace goro::detail

namespace goro {

// Parks holding the heap lock, which the scheduler releases (no static analysis across park).
void sleep(Clock::duration d) GORO_NO_TSA {
  detail::require_goroutine("goro::sleep");
  if (d <= Clock::duration::zero()) return;
  detail::TimerNode node;
  node.owned = false;
  node.kind = detail::TimerNode::Kind::sleep;
  node.g = detail::current_g();
  detail::TimerHeap& h = detail::timers();
  h.mu.lock();
  const bool first = h.add(&node, detail::deadline_after(d));
  // The unlock step runs on the scheduler context after the switch. Once it releases the
  // heap lock the timer may fire on another worker and this goroutine run on, so the step
  // must not read anything on this stack (node, locals) after the unlock: whether to wake
  // a worker is chosen here, by picking the function, and the argument is the heap itself
  // (never destroyed).
  detail::park(detail::WaitReason::sleep,
               first ? &detail::unlock_heap_and_wake : &detail::unlock_heap, &h);
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
