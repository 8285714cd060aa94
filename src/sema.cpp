// goro: the address-keyed wait table (invariants and lifetimes in sema.hpp).
#include "sema.hpp"

#include <bit>
#include <cstddef>

namespace goro::detail {

namespace {

constexpr std::size_t kBuckets = 1024;  // power of two; 64 KiB, cache-line padded
SemaBucket g_table[kBuckets];

}  // namespace

static_assert((kBuckets & (kBuckets - 1)) == 0);

SemaBucket& sema_bucket(const void* key) noexcept {
  auto a = reinterpret_cast<std::uintptr_t>(key) >> 3;
  return g_table[(a * 0x9E3779B97F4A7C15ull) >> (64 - std::countr_zero(kBuckets))];
}

bool sema_owns(const SemaBucket* b, const void* key) noexcept {
  const auto at = reinterpret_cast<std::uintptr_t>(b);
  const auto lo = reinterpret_cast<std::uintptr_t>(g_table);
  if (at < lo || at >= lo + sizeof g_table) return true;
  return &sema_bucket(key) == b;
}

SemaKeyQueue* SemaBucket::find(const void* key, SemaKind kind) {
  for (SemaKeyQueue* q = keys; q != nullptr; q = q->next) {
    if (q->key == key && q->kind == kind) return q;
  }
  return nullptr;
}

// w becomes the only waiter of a new queue, linked into the bucket.
void SemaBucket::start_queue(SemaWaiter* w) {
  SemaKeyQueue& q = w->queue;
  q.key = w->key;
  q.kind = w->kind;
  q.head = q.tail = w;
  q.prev = nullptr;
  q.next = keys;
  if (keys) keys->prev = &q;
  keys = &q;
  w->next = w->prev = nullptr;
}

// The queue header moves into `to` (its new head); the bucket's links follow it.
void SemaBucket::move_queue(SemaKeyQueue* from, SemaWaiter* to) {
  SemaKeyQueue& q = to->queue;
  q = *from;
  if (q.prev) {
    q.prev->next = &q;
  } else {
    keys = &q;
  }
  if (q.next) q.next->prev = &q;
}

void SemaBucket::push_back(SemaWaiter* w) {
  own(w)->enqueued_ = true;
  w->granted_ = false;
  SemaKeyQueue* q = find(w->key, w->kind);
  if (q == nullptr) return start_queue(w);
  w->next = nullptr;
  w->prev = q->tail;
  q->tail->next = w;
  q->tail = w;
}

void SemaBucket::push_front(SemaWaiter* w) {
  own(w)->enqueued_ = true;
  w->granted_ = false;
  SemaKeyQueue* q = find(w->key, w->kind);
  if (q == nullptr) return start_queue(w);
  SemaWaiter* old = q->head;
  w->prev = nullptr;
  w->next = old;
  old->prev = w;
  move_queue(q, w);  // the header lives in the head's record
  w->queue.head = w;
}

void SemaBucket::remove(SemaWaiter* w) {
  own(w)->enqueued_ = false;
  SemaKeyQueue* q = find(w->key, w->kind);
  if (q == nullptr) return;
  if (w->prev) {
    w->prev->next = w->next;
  } else {
    q->head = w->next;
  }
  if (w->next) {
    w->next->prev = w->prev;
  } else {
    q->tail = w->prev;
  }
  SemaWaiter* next = w->next;
  w->next = w->prev = nullptr;
  if (q != &w->queue) return;  // w was not the head: the header stays where it is
  if (next != nullptr) {
    move_queue(q, next);
  } else {  // the queue is empty: unlink it from the bucket
    if (q->prev) {
      q->prev->next = q->next;
    } else {
      keys = q->next;
    }
    if (q->next) q->next->prev = q->prev;
  }
}

SemaWaiter* SemaBucket::first(const void* key, SemaKind kind) {
  SemaKeyQueue* q = find(key, kind);
  return q ? q->head : nullptr;
}

void sema_park(WaitReason reason, SemaBucket& b) { park_unlock(reason, b.mu); }

void sema_clear_all() noexcept {
  for (SemaBucket& b : g_table) {
    LockGuard guard(b.mu);
    b.keys = nullptr;  // the records are on abandoned stacks: left untouched
  }
}

}  // namespace goro::detail
