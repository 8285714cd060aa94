// goro: channels (Go's chan.go). Invariants and the waiter protocol are in chan.hpp.
//
// Life of a channel operation (send; receive is symmetric):
//   1. Lock the channel. Closed: unlock, throw "send on closed channel".
//   2. A receiver is parked (recvq): dequeue it, unlock, move the value straight into its
//      stack slot, ready() it (into this worker's runnext).
//   3. Room in the buffer: move the value into the ring, unlock.
//   4. Otherwise publish a waiter (on this goroutine's stack) in sendq and park; the
//      scheduler releases the lock after the switch. The receiver that dequeues us moves the
//      value and readies us; close() readies us with success == false, and we throw.
#include "chan.hpp"

#include <algorithm>
#include <new>
#include <stdexcept>

namespace goro::detail {

namespace {

// A channel and its buffer are one allocation (as Go's makechan for pointer-free elements):
// the ChanCore first, the buffer at the next multiple of the block's alignment. Channels
// are made and dropped per operation in some programs (an after() per wait), where a second
// malloc/free pair was a tenth of the cost.
std::size_t block_align(const ElemOps* ops) noexcept {
  return std::max({ops->align, std::size_t{16}, alignof(ChanCore)});
}
std::size_t buffer_offset(std::size_t align) noexcept {
  return (sizeof(ChanCore) + align - 1) / align * align;
}
void* allocate_block(std::size_t size, std::size_t align) {
  if (align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) return ::operator new(size);
  return ::operator new (size, std::align_val_t{align});
}
void free_block(void* p, std::size_t align) noexcept {
  if (align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) return ::operator delete(p);
  ::operator delete (p, std::align_val_t{align});
}

// The last reference is gone: nobody else can reach c, so its fields are read unlocked
// (exclusive access the analysis cannot see; taking the lock would only cost).
void destroy_chan(ChanCore* c) GORO_NO_TSA {
  for (std::size_t i = 0; i < c->count; ++i) destroy_elem(c->ops, c->at((c->head + i) % c->cap));
  const std::size_t align = block_align(c->ops);
  c->~ChanCore();
  free_block(c, align);
}

}  // namespace

bool recv_locked(ChanCore* c, void* out, bool* received, Completion* done) {
  if (ChanWaiter* sender = c->dequeue(c->sendq)) {
    sender->belongs_to(c);
    sender->success = true;
    *received = true;
    if (c->cap == 0) {
      done->move_from = sender;  // straight from the sender's stack, after unlocking
      return true;
    }
    // Full buffer: take its head, put the sender's value at the tail (the same slot).
    void* head = c->at(c->head);
    move_elem(c->ops, out, head);
    destroy_elem(c->ops, head);
    move_elem(c->ops, head, sender->slot);
    c->head = (c->head + 1) % c->cap;
    done->wake = sender->g;
    return true;
  }
  if (c->count > 0) {
    void* head = c->at(c->head);
    move_elem(c->ops, out, head);
    destroy_elem(c->ops, head);
    c->head = (c->head + 1) % c->cap;
    --c->count;
    *received = true;
    return true;
  }
  if (c->closed) {
    *received = false;
    return true;
  }
  return false;
}

bool send_locked(ChanCore* c, void* value, bool* closed, Completion* done) {
  if (c->closed) {
    *closed = true;
    return true;
  }
  *closed = false;
  if (ChanWaiter* receiver = c->dequeue(c->recvq)) {
    receiver->belongs_to(c);
    receiver->success = true;  // the value moves after the unlock, before ready()
    done->move_to = receiver;
    return true;
  }
  if (c->count < c->cap) {
    move_elem(c->ops, c->at((c->head + c->count) % c->cap), value);
    ++c->count;
    return true;
  }
  return false;
}

ChanCore* chan_make(const ElemOps* ops, std::size_t capacity) {
  if (capacity > (std::size_t{1} << 40) / (ops->size ? ops->size : 1)) {
    throw std::invalid_argument("makechan: size out of range");
  }
  const std::size_t align = block_align(ops);
  const std::size_t offset = buffer_offset(align);
  void* block = allocate_block(offset + capacity * ops->size, align);
  auto* c = ::new (block) ChanCore();
  c->ops = ops;
  c->cap = capacity;
  c->buf = capacity > 0 ? static_cast<unsigned char*>(block) + offset : nullptr;
  return c;
}

void chan_ref(ChanCore* c) noexcept { c->refs.fetch_add(1, std::memory_order_relaxed); }

void chan_unref(ChanCore* c) noexcept {
  // Read the hook first: once our reference is gone, *c may be freed by another holder.
  void (*hook)(void*) noexcept = c->on_last_user;
  std::size_t before = c->refs.fetch_sub(1, std::memory_order_acq_rel);
  if (before == 2 && hook != nullptr) {
    hook(c->on_last_user_arg);  // the hook's owner still holds a reference: *c is alive
    return;
  }
  if (before != 1) return;
  // Last handle: nobody else can reach the channel (a parked goroutine holds a handle, and
  // the acq_rel count orders every earlier operation before this).
  destroy_chan(c);
}

void chan_send(ChanCore* c, void* value) {
  G* g = require_goroutine("channel send");
  if (c == nullptr) park_forever(WaitReason::chan_send_nil);
  const ElemOps* ops = c->ops;  // static: usable after unlock, when *c may be gone
  c->mu.lock();
  bool closed = false;
  Completion done;
  if (send_locked(c, value, &closed, &done)) {
    c->mu.unlock();
    if (closed) throw ClosedChannel("send on closed channel");
    done.finish(ops, value);
    return;
  }
  ChanWaiter w;
  w.g = g;
  w.chan = c;
  w.slot = value;
  w.is_send = true;
  c->enqueue(c->sendq, &w);
  g->chan_waiters = &w;
  g->chan_waiter_count = 1;
  chan_ref(c);  // a parked goroutine keeps its channel alive, even if it only had a reference
  park_unlock(WaitReason::chan_send, c->mu);
  g->chan_waiters = nullptr;
  g->chan_waiter_count = 0;
  chan_unref(c);
  if (!w.success_after_wake()) throw ClosedChannel("send on closed channel");
}

bool chan_recv(ChanCore* c, void* out) {
  G* g = require_goroutine("channel receive");
  if (c == nullptr) park_forever(WaitReason::chan_receive_nil);
  const ElemOps* ops = c->ops;
  c->mu.lock();
  bool received = false;
  Completion done;
  if (recv_locked(c, out, &received, &done)) {
    c->mu.unlock();
    done.finish(ops, out);
    return received;
  }
  ChanWaiter w;
  w.g = g;
  w.chan = c;
  w.slot = out;
  c->enqueue(c->recvq, &w);
  g->chan_waiters = &w;
  g->chan_waiter_count = 1;
  chan_ref(c);
  park_unlock(WaitReason::chan_receive, c->mu);
  g->chan_waiters = nullptr;
  g->chan_waiter_count = 0;
  chan_unref(c);
  return w.success_after_wake();
}

bool chan_try_send(ChanCore* c, void* value) {
  if (c == nullptr) return false;
  ForeignScope foreign;  // a foreign thread may reach parked goroutines' stacks
  const ElemOps* ops = c->ops;
  c->mu.lock();
  bool closed = false;
  Completion done;
  bool ok = send_locked(c, value, &closed, &done);
  c->mu.unlock();
  if (closed) throw ClosedChannel("send on closed channel");
  if (ok) done.finish(ops, value);
  return ok;
}

bool chan_try_recv(ChanCore* c, void* out) {
  if (c == nullptr) return false;
  ForeignScope foreign;  // a foreign thread may reach parked goroutines' stacks
  const ElemOps* ops = c->ops;
  c->mu.lock();
  bool received = false;
  Completion done;
  bool ok = recv_locked(c, out, &received, &done);
  c->mu.unlock();
  if (!ok) return false;
  done.finish(ops, out);
  return received;
}

void chan_close(ChanCore* c) {
  if (c == nullptr) throw ClosedChannel("close of nil channel");
  ForeignScope foreign;  // a foreign thread may reach parked goroutines' stacks
  ChanWaiter* woken = nullptr;
  {
    LockGuard guard(c->mu);
    if (c->closed) throw ClosedChannel("close of closed channel");
    c->closed = true;
    // Collect every waiter (linked through `next`, which dequeue() cleared).
    ChanWaiter** tail = &woken;
    while (ChanWaiter* w = c->dequeue(c->recvq)) {
      w->belongs_to(c);
      w->success = false;
      *tail = w;
      tail = &w->next;
    }
    while (ChanWaiter* w = c->dequeue(c->sendq)) {
      w->belongs_to(c);
      w->success = false;
      *tail = w;
      tail = &w->next;
    }
  }
  while (woken != nullptr) {
    ChanWaiter* next = woken->next;  // read before ready(): the waiter's stack may run
    ready(woken->g);
    woken = next;
  }
}

std::size_t chan_size(const ChanCore* c) noexcept {
  if (c == nullptr) return 0;
  auto* m = const_cast<ChanCore*>(c);
  LockGuard guard(m->mu);
  return m->count;
}

std::size_t chan_capacity(const ChanCore* c) noexcept { return c == nullptr ? 0 : c->cap; }

void detach_chan_waiters(G* g) noexcept {
  for (std::uint32_t i = 0; i < g->chan_waiter_count; ++i) {
    ChanWaiter* w = &g->chan_waiters[i];
    if (w->chan == nullptr) continue;
    {
      LockGuard guard(w->chan->mu);
      if (w->enqueued) {
        if (w->is_send) {
          w->chan->unqueue(w->chan->sendq, w);
        } else {
          w->chan->unqueue(w->chan->recvq, w);
        }
      }
    }
    chan_unref(w->chan);  // the reference the parked goroutine held
  }
  g->chan_waiter_count = 0;
}

}  // namespace goro::detail
