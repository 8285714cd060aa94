// goro internal: the type-erased channel (Go's hchan) shared by chan.cpp and select.cpp.
//
// Invariants (under ChanCore::mu):
//  - At most one of sendq and recvq is non-empty, except while a select waits to send and
//    to receive on the same unbuffered channel.
//  - count > 0 implies recvq holds no plain receiver; count < cap implies sendq is empty.
//  - closed implies sendq is empty (close wakes every waiter; they see success == false).
//  - A waiter is in a queue iff its `enqueued` flag is set; only the holder of that
//    channel's lock changes either. A waker decides a waiter's `success` when it dequeues
//    it, under the lock; the waiter reads it after it is resumed.
//  - A select's waiters share the goroutine's select_done word: the first waker to CAS it
//    from 0 to 1 owns the select; a waker that loses skips that waiter.
//  - After releasing the lock, an operation never touches the ChanCore again (a goroutine
//    may destroy the last handle the moment a transfer completes): it reads the (static)
//    ElemOps first and completes the transfer through the dequeued waiter only.
// Values move directly between the sender's and the receiver's stacks when one of them is
// parked (no buffer round-trip), and the copy happens after the lock is released when the
// peer waiter has already been dequeued (it belongs to the waker from then on).
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstring>

#include "fifo.hpp"
#include "goro/chan.hpp"
#include "goro/detail/lock.hpp"
#include "scheduler.hpp"

namespace goro::detail {

struct ChanWaiter;

// A channel's queue of parked senders or receivers (ChanCore::enqueue/unqueue/dequeue keep
// each waiter's `enqueued` flag).
struct ChanQueue {
  IntrusiveFifo<ChanWaiter> fifo;
};

struct ChanCore {
  Lock mu{LockRank::channel};
  const ElemOps* ops;
  std::size_t cap;
  unsigned char* buf;  // cap slots of ops->size bytes
  std::size_t head GORO_GUARDED_BY(mu) = 0;
  std::size_t count GORO_GUARDED_BY(mu) = 0;
  bool closed GORO_GUARDED_BY(mu) = false;
  ChanQueue recvq GORO_GUARDED_BY(mu);
  ChanQueue sendq GORO_GUARDED_BY(mu);
  std::atomic<std::size_t> refs{1};
  // Called (from chan_unref) when the references drop to one, i.e. only the hook's owner
  // holds the channel: a timer (timer.cpp) stops itself when nobody can receive from it.
  // Set once by the owner before the channel is shared; the owner's reference is released
  // only by the hook, so the count reaches one exactly once. The hook takes the timer heap
  // lock and may free the channel: chan_unref is only ever called holding no lock.
  void (*on_last_user)(void* arg) noexcept = nullptr;
  void* on_last_user_arg = nullptr;

  void* at(std::size_t index) const noexcept { return buf + index * ops->size; }

  // Queue operations (q is recvq or sendq).
  inline void enqueue(ChanQueue& q, ChanWaiter* w) noexcept GORO_REQUIRES(mu);
  inline void unqueue(ChanQueue& q, ChanWaiter* w) noexcept GORO_REQUIRES(mu);
  // The first waiter that can still be woken (a select whose select_done another waker
  // won is dropped on the way).
  inline ChanWaiter* dequeue(ChanQueue& q) noexcept GORO_REQUIRES(mu);
};

// A goroutine parked on a channel (Go's sudog), on that goroutine's stack. Fields by who
// guards them:
struct ChanWaiter {
  // Set by the waiting goroutine before it enqueues the waiter (under chan->mu), read-only
  // while it is queued.
  G* g = nullptr;
  ChanCore* chan = nullptr;
  void* slot = nullptr;  // send: the value to move from; recv: storage to construct into
  bool is_select = false;
  bool is_send = false;
  std::uint32_t case_index = 0;
  // Queue links: under chan->mu while enqueued (ChanCore::enqueue...). Once a waker has dequeued
  // the waiter it owns them until ready() (close() links its woken list through `next`).
  ChanWaiter* next = nullptr;
  ChanWaiter* prev = nullptr;
  // In one of chan's queues (only ChanCore's queue operations change it).
  bool enqueued GORO_GUARDED_BY(chan->mu) = false;
  // The outcome, written by the waker that dequeued the waiter while it still holds the
  // channel lock: true, a value moved (or will move before ready()); false, woken by close.
  bool success GORO_GUARDED_BY(chan->mu) = false;

  // The caller holds c->mu and found this waiter in c's queues (or it is its own waiter on
  // c): from here on the analysis knows chan->mu is held. The analysis cannot follow that a
  // waiter in c's queue points back to c; debug builds check it.
  void belongs_to(const ChanCore* c) const noexcept GORO_REQUIRES(c->mu)
      GORO_ASSERT_CAPABILITY(chan->mu) {
    assert(chan == c);
    (void)c;
  }
  // The outcome, read by the waiting goroutine once it runs again: the waker wrote it under
  // the channel lock before ready(), and ready() -> resume orders that write before this
  // read. No lock is held (and none is needed) here, which the analysis cannot see.
  bool success_after_wake() const noexcept GORO_NO_TSA { return success; }
};

// select: a waker claims the select of w's goroutine (Go's selectDone). The CAS on
// G::select_done, not a lock, decides the one winner; only that waker writes select_winner,
// and the goroutine reads it after it is resumed (select_winner_after_wake).
inline bool claim_select(ChanWaiter* w) noexcept {
  std::uint32_t expected = 0;
  if (!w->g->select_done.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    return false;
  }
  w->g->select_winner = w;
  return true;
}
inline ChanWaiter* select_winner_after_wake(const G* g) noexcept { return g->select_winner; }

void ChanCore::enqueue(ChanQueue& q, ChanWaiter* w) noexcept {
  w->belongs_to(this);
  q.fifo.push_back(w);
  w->enqueued = true;
}

void ChanCore::unqueue(ChanQueue& q, ChanWaiter* w) noexcept {
  w->belongs_to(this);
  q.fifo.remove(w);
  w->enqueued = false;
}

ChanWaiter* ChanCore::dequeue(ChanQueue& q) noexcept {
  while (ChanWaiter* w = q.fifo.head) {
    unqueue(q, w);
    if (!w->is_select) return w;
    if (claim_select(w)) return w;
  }
  return nullptr;
}

// Element moves without an indirect call for trivially copyable types (ints, pointers, PODs).
inline void move_elem(const ElemOps* ops, void* dst, void* src) noexcept {
  if (ops->trivial) {
    switch (ops->size) {  // the common sizes as single moves, not a call into libc
      case 8:
        std::memcpy(dst, src, 8);
        return;
      case 4:
        std::memcpy(dst, src, 4);
        return;
      case 16:
        std::memcpy(dst, src, 16);
        return;
      default:
        std::memcpy(dst, src, ops->size);
        return;
    }
  } else {
    ops->move_construct(dst, src);
  }
}
inline void destroy_elem(const ElemOps* ops, void* p) noexcept {
  if (!ops->trivial) ops->destroy(p);
}

// What an operation on a locked channel leaves to do once the lock is released.
struct Completion {
  ChanWaiter* move_to = nullptr;    // a parked receiver: move our value into it, ready it
  ChanWaiter* move_from = nullptr;  // a parked sender: move its value out, ready it
  G* wake = nullptr;                // a parked sender whose value went into the buffer
  void finish(const ElemOps* ops, void* ours) noexcept {
    if (move_to) {
      move_elem(ops, move_to->slot, ours);  // success was set under the lock
      ready(move_to->g);
    } else if (move_from) {
      move_elem(ops, ours, move_from->slot);
      ready(move_from->g);
    } else if (wake) {
      ready(wake);
    }
  }
};

// Under c->mu: receive into out if possible. Returns false when it would block; otherwise
// *received tells whether a value arrives (false: closed and drained).
bool recv_locked(ChanCore* c, void* out, bool* received, Completion* done) GORO_REQUIRES(c->mu);
// Under c->mu: send *value if possible. Returns false when it would block; *closed is set
// (and nothing done) when the channel is closed.
bool send_locked(ChanCore* c, void* value, bool* closed, Completion* done) GORO_REQUIRES(c->mu);

}  // namespace goro::detail
