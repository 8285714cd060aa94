// goro: select (Go's selectgo).
//
// Life of a select:
//   1. Shuffle the non-nil cases (poll order: uniform choice among ready cases) and sort
//      them by channel address (lock order; a channel that appears twice is locked once).
//   2. Lock every channel, look for a ready case in poll order; run it (the same code as a
//      plain send/receive: chan.hpp's send_locked/recv_locked) and unlock.
//   3. None ready and a default: unlock, return the default. (A lock-free look at the cases
//      one by one may find work first, but "none ready" is only decided with all locked.)
//   4. Otherwise enqueue one waiter per case, all pointing at this goroutine, whose
//      select_done word decides who wins; park with "unlock every channel" as the unlock
//      step. The first waker to CAS select_done 0 -> 1 owns the select, records its waiter
//      as the winner, completes the transfer and readies us; other wakers skip our waiters.
//   5. Woken: lock every channel again, remove the waiters still enqueued, unlock, and
//      report the winner's case.
// Two selects that lock the same channels in a different written order cannot deadlock:
// both lock in address order.
#include "goro/select.hpp"

#include <algorithm>
#include <memory>

#include "chan.hpp"

namespace goro::detail {

namespace {

struct LockSet {
  SelectCase* cases;
  const std::uint32_t* order;  // case indices sorted by channel address
  std::size_t n;

  void lock_all() const GORO_NO_TSA {
    for (std::size_t k = 0; k < n; ++k) {
      if (k == 0 || cases[order[k]].core != cases[order[k - 1]].core)
        cases[order[k]].core->mu.lock();
    }
  }
  void unlock_all() const GORO_NO_TSA {
    for (std::size_t k = n; k-- > 0;) {
      if (k == 0 || cases[order[k]].core != cases[order[k - 1]].core) {
        cases[order[k]].core->mu.unlock();
      }
    }
  }
};

void unlock_all_fn(void* set) { static_cast<LockSet*>(set)->unlock_all(); }

FastRand& select_rand() {
  thread_local FastRand rand{0x2545F4914F6CDD1Dull ^ reinterpret_cast<std::uintptr_t>(&rand)};
  return rand;
}

// Small selects (the common case) keep their bookkeeping on the stack.
template <class T, std::size_t N>
struct SmallArray {
  T inline_items[N];
  std::unique_ptr<T[]> heap;
  T* data;
  explicit SmallArray(std::size_t n) : data(inline_items) {
    if (n > N) {
      heap.reset(new T[n]);
      data = heap.get();
    }
  }
};

}  // namespace

[[noreturn]] void select_forever() {
  require_goroutine("select");
  park_forever(WaitReason::select_no_cases);
}

std::size_t select_impl(SelectCase* cases, std::size_t n, bool has_default) {
  if (!has_default) require_goroutine("select");
  SmallArray<std::uint32_t, 8> poll(n);
  SmallArray<std::uint32_t, 8> order(n);
  std::size_t active = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (cases[i].kind != CaseKind::nil) poll.data[active++] = static_cast<std::uint32_t>(i);
  }
  if (active == 0) {
    if (has_default) return n;
    park_forever(WaitReason::select);  // only nil channels
  }
  FastRand& rand = select_rand();
  for (std::size_t i = active; i > 1; --i) {
    std::swap(poll.data[i - 1], poll.data[rand.below(static_cast<std::uint32_t>(i))]);
  }

  // Fast path: try each case alone, in poll order, under its own lock. A case that is ready
  // when tried completes exactly as a plain try_send/try_recv would, so this is one valid
  // outcome of the atomic select (the cases tried before it were not ready when tried), and
  // a select that finds work pays for one lock instead of all of them.
  for (std::size_t k = 0; k < active; ++k) {
    SelectCase& sc = cases[poll.data[k]];
    const ElemOps* ops = sc.core->ops;  // static: usable after unlock
    Completion done;
    bool fired = false;
    sc.core->mu.lock();
    if (sc.kind == CaseKind::recv) {
      bool received = false;
      fired = recv_locked(sc.core, sc.slot, &received, &done);
      sc.received = received;
      sc.core->mu.unlock();
    } else {
      bool closed = false;
      fired = send_locked(sc.core, sc.slot, &closed, &done);
      sc.core->mu.unlock();
      if (closed) throw ClosedChannel("send on closed channel");
    }
    if (fired) {
      done.finish(ops, sc.slot);
      return poll.data[k];
    }
  }
  // With one case the try above was atomic; with several, "none ready" must be decided with
  // every channel locked (a case may have become ready after it was tried while another
  // was drained), so a select with a default takes the locked path below too.
  if (has_default && active == 1) return n;

  // Slow path: lock every channel (in address order), check again, then wait on all.
  for (std::size_t k = 0; k < active; ++k) {
    std::uint32_t v = poll.data[k];
    std::size_t j = k;
    for (; j > 0 && std::less<ChanCore*>()(cases[v].core, cases[order.data[j - 1]].core); --j) {
      order.data[j] = order.data[j - 1];
    }
    order.data[j] = v;
  }
  LockSet locks{cases, order.data, active};

  locks.lock_all();
  for (std::size_t k = 0; k < active; ++k) {
    SelectCase& sc = cases[poll.data[k]];
    const ElemOps* ops = sc.core->ops;
    Completion done;
    if (sc.kind == CaseKind::recv) {
      bool received = false;
      sc.core->mu.assert_held();  // lock_all
      if (recv_locked(sc.core, sc.slot, &received, &done)) {
        locks.unlock_all();
        done.finish(ops, sc.slot);
        sc.received = received;
        return poll.data[k];
      }
    } else {
      bool closed = false;
      sc.core->mu.assert_held();  // lock_all
      if (send_locked(sc.core, sc.slot, &closed, &done)) {
        locks.unlock_all();
        if (closed) throw ClosedChannel("send on closed channel");
        done.finish(ops, sc.slot);
        return poll.data[k];
      }
    }
  }
  if (has_default) {
    locks.unlock_all();
    return n;
  }

  G* g = current_g();
  g->select_done.store(0, std::memory_order_relaxed);
  g->select_winner = nullptr;
  SmallArray<ChanWaiter, 4> waiters(active);
  for (std::size_t k = 0; k < active; ++k) {
    std::uint32_t i = order.data[k];
    ChanWaiter& w = waiters.data[k];
    w = ChanWaiter{};
    w.g = g;
    w.chan = cases[i].core;
    w.slot = cases[i].slot;
    w.is_select = true;
    w.is_send = cases[i].kind == CaseKind::send;
    w.case_index = i;
    chan_ref(w.chan);          // parked goroutines keep their channels alive
    w.chan->mu.assert_held();  // lock_all
    if (w.is_send) {
      w.chan->enqueue(w.chan->sendq, &w);
    } else {
      w.chan->enqueue(w.chan->recvq, &w);
    }
  }
  g->chan_waiters = waiters.data;
  g->chan_waiter_count = static_cast<std::uint32_t>(active);
  park(WaitReason::select, unlock_all_fn, &locks);

  locks.lock_all();
  for (std::size_t k = 0; k < active; ++k) {
    ChanWaiter& w = waiters.data[k];
    w.chan->mu.assert_held();  // lock_all
    if (!w.enqueued) continue;
    if (w.is_send) {
      w.chan->unqueue(w.chan->sendq, &w);
    } else {
      w.chan->unqueue(w.chan->recvq, &w);
    }
  }
  locks.unlock_all();
  g->chan_waiters = nullptr;
  g->chan_waiter_count = 0;
  for (std::size_t k = 0; k < active; ++k) chan_unref(waiters.data[k].chan);

  ChanWaiter* winner = select_winner_after_wake(g);
  std::size_t index = winner->case_index;
  if (winner->is_send) {
    if (!winner->success_after_wake()) throw ClosedChannel("send on closed channel");
  } else {
    cases[index].received = winner->success_after_wake();
  }
  return index;
}

}  // namespace goro::detail
