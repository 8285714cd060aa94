// goro: the run queues (invariants in runq.hpp).
#include "runq.hpp"

#include <algorithm>

#include "platform.hpp"

namespace goro::detail {

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

namespace {

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

}  // namespace

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

}  // namespace goro::detail
