// goro: WaitGroup, Mutex, RWMutex and Cond (Go's sync package), on goroutine parking.
//
// Each object is one word of state; goroutines that wait on it are parked in the runtime's
// address-keyed wait table (sema.hpp), in the bucket of the object's address. Fast paths
// are a single atomic operation on the state word. Slow paths take the bucket lock, and a
// waiter publishes itself (flag in the state word, record in the bucket) under it, then
// parks with sema_park, which releases the lock only once the goroutine is off its stack.
//
// Lifetimes (the contract lets an owner free a WaitGroup as soon as wait() returns, and a
// Mutex as soon as its last holder unlocked it): every operation's last write to the
// object is the one that publishes its effect (counter to zero, lock released or handed
// over), and a waker makes that write while it holds the bucket lock; afterwards it touches
// only the bucket and the waiter records it dequeued. A woken waiter returns without
// touching the object. The state word's "waiters" bits are hints: slow paths recompute
// them from the table (after an abandoned run the table is empty while a global object's
// word may still say otherwise).
//
// Lock order: one bucket lock at a time; ready() only after it is released.
#include "goro/sync.hpp"

#include <stdexcept>

#include "platform.hpp"
#include "scheduler.hpp"
#include "sema.hpp"

namespace goro {

namespace {

constexpr std::int64_t kStarvationNs = 1'000'000;  // Go's starvationThresholdNs

// WaitGroup state: counter in the high 32 bits (signed), parked waiters in the low 32.
std::int32_t wg_counter(std::uint64_t state) { return static_cast<std::int32_t>(state >> 32); }
std::uint32_t wg_waiters(std::uint64_t state) { return static_cast<std::uint32_t>(state); }

// RWMutex state.
constexpr std::uint64_t kWriter = 1;          // a writer holds the lock
constexpr std::uint64_t kWritersWaiting = 2;  // writers are (probably) parked
constexpr std::uint64_t kReadersWaiting = 4;  // readers are (probably) parked
constexpr std::uint64_t kReaderOne = std::uint64_t{1} << 32;
std::uint64_t rw_readers(std::uint64_t state) { return state >> 32; }

// Readies a list of granted waiters (linked through `next`, which the dequeue cleared and
// the collector re-linked). Called after the bucket lock is released.
void ready_all(detail::SemaWaiter* woken) noexcept {
  while (woken != nullptr) {
    detail::SemaWaiter* next = woken->next;  // read before ready(): its stack may run
    detail::ready(woken->g);
    woken = next;
  }
}

// Under b.mu: dequeues every waiter of key (of kind) and marks it granted; returns the
// list linked through `next`, and the count.
detail::SemaWaiter* take_all(detail::SemaBucket& b, const void* key, detail::SemaKind kind,
                             std::uint32_t* count) GORO_REQUIRES(b.mu) {
  detail::SemaWaiter* woken = nullptr;
  detail::SemaWaiter** tail = &woken;
  std::uint32_t n = 0;
  detail::SemaWaiter* w = b.first(key, kind);
  while (w != nullptr) {
    detail::SemaWaiter* next = b.next_of(w, key, kind);
    b.remove(w);
    b.grant(w);
    *tail = w;
    tail = &w->next;
    ++n;
    w = next;
  }
  *tail = nullptr;
  if (count) *count = n;
  return woken;
}

}  // namespace

// ---- WaitGroup ----

void WaitGroup::add(int delta) {
  const std::uint64_t d = static_cast<std::uint64_t>(static_cast<std::int64_t>(delta)) << 32;
  std::uint64_t state = state_.load(std::memory_order_relaxed);
  for (;;) {
    const std::uint64_t next = state + d;
    if (wg_counter(next) < 0) throw std::logic_error("sync: negative WaitGroup counter");
    if (wg_counter(next) == 0 && wg_waiters(next) != 0) break;  // wake them: slow path
    if (state_.compare_exchange_weak(state, next, std::memory_order_acq_rel,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
  // A thread that is not a worker may be racing the end of run(): the waiter records it
  // dequeues live on goroutine stacks that teardown releases (see ForeignScope).
  detail::ForeignScope foreign;
  // The counter reaches zero with goroutines parked. Zero it under the bucket lock, so that
  // no waiter can return (and free *this) before we are done with the state word, and no
  // new waiter can enqueue between the zeroing and the collection.
  detail::SemaBucket& b = detail::sema_bucket(this);
  detail::SemaWaiter* woken = nullptr;
  {
    detail::LockGuard guard(b.mu);
    state = state_.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint64_t next = state + d;
      if (wg_counter(next) < 0) throw std::logic_error("sync: negative WaitGroup counter");
      const std::uint64_t store = wg_counter(next) == 0 ? 0 : next;
      if (state_.compare_exchange_weak(state, store, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
        if (store == 0) woken = take_all(b, this, detail::SemaKind::any, nullptr);
        break;
      }
    }
    // *this may be freed from here on (a waiter on the fast path saw zero).
  }
  ready_all(woken);
}

void WaitGroup::wait() {
  detail::require_goroutine("sync.WaitGroup.Wait");
  if (wg_counter(state_.load(std::memory_order_acquire)) == 0) return;
  detail::SemaBucket& b = detail::sema_bucket(this);
  detail::SemaWaiter w;
  w.g = detail::current_g();
  w.key = this;
  b.mu.lock();
  std::uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if (wg_counter(state) == 0) {
      b.mu.unlock();
      return;
    }
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel)) break;
  }
  b.push_back(&w);
  detail::sema_park(detail::WaitReason::waitgroup_wait, b);
  // Woken by the add() that zeroed the counter: *this may already be gone.
}

// ---- Mutex ----

void Mutex::lock_slow() {
  detail::SemaBucket& b = detail::sema_bucket(this);
  detail::SemaWaiter w;
  w.g = detail::current_g();
  w.key = this;
  bool requeue = false;
  for (;;) {
    // A short spin with exponential backoff: the holder is often about to unlock on another
    // worker.
    detail::Backoff backoff;
    for (int i = 0; i < 10; ++i) {
      std::uint64_t state = state_.load(std::memory_order_relaxed);
      if (!(state & (kLocked | kHandOff)) &&
          state_.compare_exchange_weak(state, state | kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return;
      }
      backoff.pause();
    }
    b.mu.lock();
    std::uint64_t state = state_.load(std::memory_order_relaxed);
    if (!(state & (kLocked | kHandOff))) {
      bool won = state_.compare_exchange_strong(state, state | kLocked, std::memory_order_acquire,
                                                std::memory_order_relaxed);
      b.mu.unlock();
      if (won) return;
      continue;
    }
    // Locked: announce a waiter (so the holder's unlock takes the slow path), then queue.
    if (!(state & kWaiters) &&
        !state_.compare_exchange_strong(state, state | kWaiters, std::memory_order_relaxed)) {
      b.mu.unlock();
      continue;
    }
    if (w.since_ns == 0) w.since_ns = detail::monotonic_ns();
    if (requeue) {
      b.push_front(&w);  // a woken waiter that lost the race keeps its place
    } else {
      b.push_back(&w);
    }
    detail::sema_park(detail::WaitReason::mutex_lock, b);
    if (w.granted_after_wake()) {  // starvation mode: the unlocker handed the lock to us
      std::uint64_t now = state_.load(std::memory_order_relaxed);
      while (!state_.compare_exchange_weak(now, (now & ~kHandOff) | kLocked,
                                           std::memory_order_acquire, std::memory_order_relaxed)) {
      }
      return;
    }
    requeue = true;
  }
}

void Mutex::unlock_slow(std::uint64_t state) {
  if (!(state & kLocked)) throw std::logic_error("sync: unlock of unlocked mutex");
  detail::ForeignScope foreign;  // see WaitGroup::add
  detail::SemaBucket& b = detail::sema_bucket(this);
  detail::SemaWaiter* w;
  {
    detail::LockGuard guard(b.mu);
    // Lockers set kWaiters only under b.mu, and nobody else can clear kLocked: the state is
    // stable here.
    w = b.first(this);
    if (w == nullptr) {
      state_.store(0, std::memory_order_release);  // a stale waiters flag: nobody to wake
      return;
    }
    const std::uint64_t rest = b.next_of(w, this) != nullptr ? kWaiters : 0;
    b.remove(w);
    if (detail::monotonic_ns() - w->since_ns > kStarvationNs) {
      // Hand-off: the lock now belongs to w. kHandOff keeps newcomers out until w runs and
      // turns it into kLocked; the word does not say kLocked meanwhile, so a second unlock
      // by this goroutine is reported (Go: mutexStarving).
      b.grant(w);
      state_.store(kHandOff | rest, std::memory_order_release);
    } else {
      state_.store(rest, std::memory_order_release);
    }
    // *this may be freed from here on.
  }
  detail::ready(w->g);
}

// ---- RWMutex ----

void RWMutex::lock() {
  detail::require_goroutine("sync.RWMutex.Lock");
  std::uint64_t expected = 0;
  if (state_.compare_exchange_strong(expected, kWriter, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
    return;
  }
  detail::SemaBucket& b = detail::sema_bucket(this);
  b.mu.lock();
  std::uint64_t state = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (!(state & kWriter) && rw_readers(state) == 0) {
      if (state_.compare_exchange_weak(state, state | kWriter, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        b.mu.unlock();
        return;
      }
      continue;
    }
    if (state_.compare_exchange_weak(state, state | kWritersWaiting, std::memory_order_relaxed)) {
      break;
    }
  }
  detail::SemaWaiter w;
  w.g = detail::current_g();
  w.key = this;
  w.kind = detail::SemaKind::writer;
  b.push_back(&w);
  detail::sema_park(detail::WaitReason::rwmutex_lock, b);
  // Granted: the waker set kWriter for us.
}

bool RWMutex::try_lock() {
  std::uint64_t state = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((state & kWriter) || rw_readers(state) != 0) return false;
    if (state_.compare_exchange_weak(state, state | kWriter, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
}

void RWMutex::unlock() {
  std::uint64_t state = state_.load(std::memory_order_relaxed);
  if (!(state & kWriter)) throw std::logic_error("sync: Unlock of unlocked RWMutex");
  std::uint64_t expected = kWriter;
  if (state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                     std::memory_order_relaxed)) {
    return;
  }
  detail::ForeignScope foreign;  // see WaitGroup::add
  detail::SemaBucket& b = detail::sema_bucket(this);
  detail::SemaWaiter* woken = nullptr;
  {
    detail::LockGuard guard(b.mu);
    state = state_.load(std::memory_order_relaxed);
    if (!(state & kWriter)) throw std::logic_error("sync: Unlock of unlocked RWMutex");
    // Readers that queued behind this writer go first, so a stream of writers cannot starve
    // them; otherwise the next writer gets the lock directly.
    std::uint32_t readers = 0;
    woken = take_all(b, this, detail::SemaKind::reader, &readers);
    std::uint64_t next;
    if (readers > 0) {
      next = (state & ~(kWriter | kReadersWaiting)) + readers * kReaderOne;
      if (b.first(this, detail::SemaKind::writer) == nullptr) next &= ~kWritersWaiting;
    } else if (detail::SemaWaiter* writer = b.first(this, detail::SemaKind::writer)) {
      b.remove(writer);
      b.grant(writer);
      writer->next = nullptr;
      woken = writer;
      next = kWriter | (b.first(this, detail::SemaKind::writer) ? kWritersWaiting : 0);
    } else {
      next = state & ~(kWriter | kWritersWaiting | kReadersWaiting);
    }
    // Only this goroutine's unlock writes the state while kWriter is set and b.mu is held
    // (readers and writers that would change it queue under b.mu): a plain store is exact.
    state_.store(next, std::memory_order_release);
  }
  ready_all(woken);
}

void RWMutex::lock_shared() {
  detail::require_goroutine("sync.RWMutex.RLock");
  std::uint64_t state = state_.load(std::memory_order_relaxed);
  // Once a writer waits, new readers queue behind it: writers are not starved.
  while (!(state & (kWriter | kWritersWaiting))) {
    if (state_.compare_exchange_weak(state, state + kReaderOne, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
  detail::SemaBucket& b = detail::sema_bucket(this);
  b.mu.lock();
  state = state_.load(std::memory_order_relaxed);
  if ((state & kWritersWaiting) && !(state & kWriter) &&
      b.first(this, detail::SemaKind::writer) == nullptr) {
    // A stale flag (the writer that set it was abandoned by an earlier run).
    state_.fetch_and(~kWritersWaiting, std::memory_order_relaxed);
    state = state_.load(std::memory_order_relaxed);
  }
  for (;;) {
    if (!(state & (kWriter | kWritersWaiting))) {
      if (state_.compare_exchange_weak(state, state + kReaderOne, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        b.mu.unlock();
        return;
      }
      continue;
    }
    if (state_.compare_exchange_weak(state, state | kReadersWaiting, std::memory_order_relaxed)) {
      break;
    }
  }
  detail::SemaWaiter w;
  w.g = detail::current_g();
  w.key = this;
  w.kind = detail::SemaKind::reader;
  b.push_back(&w);
  detail::sema_park(detail::WaitReason::rwmutex_rlock, b);
  // Granted: the waker counted us as an active reader.
}

bool RWMutex::try_lock_shared() {
  std::uint64_t state = state_.load(std::memory_order_relaxed);
  while (!(state & (kWriter | kWritersWaiting))) {
    if (state_.compare_exchange_weak(state, state + kReaderOne, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void RWMutex::unlock_shared() {
  std::uint64_t state = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (rw_readers(state) == 0) throw std::logic_error("sync: RUnlock of unlocked RWMutex");
    if (rw_readers(state) == 1 && (state & kWritersWaiting)) break;  // hand over: slow path
    if (state_.compare_exchange_weak(state, state - kReaderOne, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
  // The last reader leaves while a writer waits: give the lock to the longest writer, under
  // the bucket lock (no other reader can enter: kWritersWaiting is set).
  detail::ForeignScope foreign;  // see WaitGroup::add
  detail::SemaBucket& b = detail::sema_bucket(this);
  detail::SemaWaiter* writer;
  {
    detail::LockGuard guard(b.mu);
    state = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (rw_readers(state) == 0) throw std::logic_error("sync: RUnlock of unlocked RWMutex");
      if (rw_readers(state) > 1 || (state & kWriter)) {
        if (state_.compare_exchange_weak(state, state - kReaderOne, std::memory_order_release,
                                         std::memory_order_relaxed)) {
          return;
        }
        continue;
      }
      writer = b.first(this, detail::SemaKind::writer);
      std::uint64_t next = state - kReaderOne;
      if (writer != nullptr) {
        next |= kWriter;
        next &= ~kWritersWaiting;
        if (b.next_of(writer, this, detail::SemaKind::writer)) next |= kWritersWaiting;
      } else {
        next &= ~kWritersWaiting;  // a stale flag
      }
      if (state_.compare_exchange_weak(state, next, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
        break;
      }
    }
    if (writer != nullptr) {
      b.remove(writer);
      b.grant(writer);
    }
  }
  if (writer != nullptr) detail::ready(writer->g);
}

// ---- Cond ----

void Cond::wait() {
  detail::require_goroutine("sync.Cond.Wait");
  detail::SemaBucket& b = detail::sema_bucket(this);
  detail::SemaWaiter w;
  w.g = detail::current_g();
  w.key = this;
  {
    detail::LockGuard guard(b.mu);
    b.push_back(&w);  // queued before unlocking m_: a signal after that finds us
  }
  try {
    m_.unlock();
  } catch (...) {
    // Not holding the mutex (Go: fatal error). Leave the Cond as it was: withdraw, and pass
    // on a signal that already picked us.
    detail::SemaWaiter* pass = nullptr;
    bool parked = false;
    {
      detail::LockGuard guard(b.mu);
      if (b.queued(&w)) {
        b.remove(&w);
      } else if (b.granted(&w) && (pass = b.first(this)) != nullptr) {
        b.remove(pass);
        b.grant(pass);
        parked = b.parked(pass);
      }
    }
    if (pass != nullptr && parked) detail::ready(pass->g);
    throw;
  }
  b.mu.lock();
  if (b.granted(&w)) {
    b.mu.unlock();
  } else {
    b.mark_parked(&w);
    detail::sema_park(detail::WaitReason::cond_wait, b);
  }
  m_.lock();
}

void Cond::signal() {
  detail::ForeignScope foreign;  // see WaitGroup::add
  detail::SemaBucket& b = detail::sema_bucket(this);
  detail::SemaWaiter* w;
  bool parked = false;
  {
    detail::LockGuard guard(b.mu);
    w = b.first(this);
    if (w == nullptr) return;
    b.remove(w);
    b.grant(w);
    parked = b.parked(w);
  }
  if (parked) detail::ready(w->g);
}

void Cond::broadcast() {
  detail::ForeignScope foreign;  // see WaitGroup::add
  detail::SemaBucket& b = detail::sema_bucket(this);
  detail::SemaWaiter* woken = nullptr;
  detail::SemaWaiter** tail = &woken;
  {
    detail::LockGuard guard(b.mu);
    while (detail::SemaWaiter* w = b.first(this)) {
      b.remove(w);
      b.grant(w);
      if (b.parked(w)) {  // the others have not parked yet: they will see `granted`
        *tail = w;
        tail = &w->next;
      }
    }
    *tail = nullptr;
  }
  ready_all(woken);
}

}  // namespace goro
