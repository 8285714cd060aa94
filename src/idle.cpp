// goro: finding work, idle workers, spinning, and deadlock detection (Go's findrunnable,
// wakep and checkdead).
//
// A worker with nothing to run looks, in order: due timers, the global queue (first on
// every 61st tick, for fairness), its own queue, the global queue again, then steals half
// of a random victim's queue (at most half of the busy workers spin at once). Finding
// nothing, it publishes itself idle and sleeps on its futex until woken or until the next
// timer is due.
//
// The network poller (netpoll.cpp): while goroutines wait for I/O, a worker looking for work
// polls without blocking before it steals (and on every 61st tick, so that ready I/O is
// not starved by busy queues), and one idle worker at a time (netpoll_blocked) sleeps in
// epoll_wait instead of on its futex, with the next timer as its timeout. Waking it is
// wake_worker's job: it sets wake_word, then breaks epoll_wait if the worker is in it; the
// worker sets in_netpoll, then checks wake_word (both sequentially consistent), so a wake-up
// is never lost between the two. Readiness itself cannot be lost: it stays queued in the
// epoll instance until some worker's epoll_wait takes it.
//
// Idle workers and lost wake-ups: a worker going idle first publishes itself (idle list,
// npidle++), then re-checks every run queue; a waker first publishes work, then checks
// npidle. Both use sequentially consistent operations, so at least one sees the other.
//
// Deadlock (Go's checkdead): a worker that is about to sleep while every worker is idle, no
// timer is armed, no goroutine is in blocking() or I/O wait, no ForeignThread is registered
// and no goroutine is queued reports "all goroutines are asleep". Whatever ends one of those
// external conditions (a blocking() call returning, the last ForeignThread going away) wakes
// an idle worker to run the check again (recheck_deadlock), so the verdict is exact and
// never time-based.
//
// Lock: sched_mu guards the idle list and the global queue; it is taken after any channel
// or wait-table lock and before the stack pool and timer heap locks.
#include <algorithm>

#include "netpoll.hpp"
#include "platform.hpp"
#include "runq.hpp"
#include "scheduler.hpp"

namespace goro::detail {

namespace {

G* steal_work(P* p) {
  Runtime* rt = p->rt;
  G* batch[kRunQueueSize / 2];
  for (int attempt = 0; attempt < 4; ++attempt) {
    const int nps = all_ps(rt);  // spare workers too: a retaken one may still queue work
    std::uint32_t start = p->rand.below(static_cast<std::uint32_t>(nps));
    for (int i = 0; i < nps; ++i) {
      P* victim = rt->ps[(start + i) % nps];
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

P* idle_pop(Runtime* rt) GORO_REQUIRES(rt->sched_mu) {
  P* q = rt->idle_list;
  if (q != nullptr) {
    rt->idle_list = q->idle_next;
    q->idle = false;
    q->idle_next = nullptr;
    rt->npidle.fetch_sub(1, std::memory_order_seq_cst);
    sysmon_note_busy(rt);
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
  sysmon_note_busy(rt);
  return true;
}

void wake_worker(P* q) {
  q->wake_word.store(1, std::memory_order_seq_cst);
  if (q->in_netpoll.load(std::memory_order_seq_cst)) {
    netpoll_break();
  } else {
    futex_wake(&q->wake_word, 1);
  }
}

constexpr int kPollBatch = 64;

// Queues goroutines whose I/O is ready (netpoll marked them runnable) on p (p's own worker)
// and lets an idle worker steal some when there are several.
void inject_ready(P* p, G** gs, int n) {
  for (int i = 0; i < n; ++i) runq_put(p, gs[i], false);
  if (n > 1) wakep(p->rt);
}

// A non-blocking poll, unless nobody waits for I/O or a worker already sleeps in the poller
// (it will take the events). Returns one goroutine to run and queues the others.
G* poll_ready(P* p) {
  if (netpoll_waiters() == 0 || p->rt->netpoll_blocked.load(std::memory_order_relaxed)) {
    return nullptr;
  }
  G* batch[kPollBatch];
  int n = netpoll(0, batch, kPollBatch);
  if (n == 0) return nullptr;
  inject_ready(p, batch + 1, n - 1);
  return batch[0];
}

// Wakes an idle worker to look for work, unless one is already looking (Go's wakep).
}  // namespace

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

namespace {

void stop_spinning(P* p) {
  if (!p->spinning.load(std::memory_order_relaxed)) return;
  p->spinning.store(false, std::memory_order_relaxed);
  // The last spinner found work: there may be more, so start another spinner.
  if (p->rt->nmspinning.fetch_sub(1, std::memory_order_seq_cst) == 1) wakep(p->rt);
}

}  // namespace

void begin_stop(Runtime* rt) {
  rt->stopping.store(true, std::memory_order_seq_cst);
  LockGuard guard(rt->sched_mu);
  while (P* q = idle_pop(rt)) wake_worker(q);
  wake_spares(rt);
}

namespace {

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
  for (int i = 0, n = all_ps(rt); i < n && !work; ++i) work = !runq_empty(rt->ps[i]);
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
    } else if (p->idle &&
               rt->npidle.load(std::memory_order_seq_cst) ==
                   rt->nworkers.load(std::memory_order_seq_cst) &&
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
  G* polled[kPollBatch];
  int npolled = 0;
  if (netpoll_waiters() > 0 && !rt->netpoll_blocked.exchange(true, std::memory_order_seq_cst)) {
    p->in_netpoll.store(true, std::memory_order_seq_cst);
    if (p->wake_word.load(std::memory_order_seq_cst) == 0) {
      npolled = netpoll(timeout == kNever ? -1 : timeout, polled, kPollBatch);
    }
    p->in_netpoll.store(false, std::memory_order_seq_cst);
    rt->netpoll_blocked.store(false, std::memory_order_seq_cst);
  } else if (timeout == kNever) {
    futex_wait(&p->wake_word, 0, nullptr);
  } else {
    timespec ts = to_timespec(timeout);
    futex_wait(&p->wake_word, 0, &ts);
  }
  {
    LockGuard guard(rt->sched_mu);
    idle_remove(rt, p);  // timed out, polled or woke spuriously: no longer idle
    p->wake_word.store(0, std::memory_order_relaxed);
  }
  inject_ready(p, polled, npolled);
}

G* found(P* p, G* g) {
  stop_spinning(p);
  return g;
}

}  // namespace

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
      if (G* g = poll_ready(p)) return found(p, g);
    }
    if (G* g = runq_get(p)) return found(p, g);
    if (G* g = global_get(p, kRunQueueSize / 2)) return found(p, g);
    if (G* g = poll_ready(p)) return found(p, g);
    const int nworkers = rt->nworkers.load(std::memory_order_relaxed);  // spares included
    if (nworkers > 1) {
      bool spinning = p->spinning.load(std::memory_order_relaxed);
      if (!spinning && 2 * rt->nmspinning.load(std::memory_order_relaxed) <
                           nworkers - rt->npidle.load(std::memory_order_relaxed)) {
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

}  // namespace goro::detail
