// goro: WaitGroup, Mutex, RWMutex and Cond (Go's sync package), on goroutine parking.
//
// Each object has an internal Lock (mu_) that guards its waiter queue; a goroutine parks
// with park_unlock(mu_), so the lock is released only once it is off its stack. Wakers
// collect the waiters to wake under mu_, release mu_, then ready() them; after releasing
// mu_ they never touch the object again, which is what lets a WaitGroup be destroyed as
// soon as wait() returns and a Mutex as soon as its last holder unlocked it.
#include "goro/sync.hpp"

#include <stdexcept>

#include "platform.hpp"
#include "scheduler.hpp"

namespace goro {

namespace {
constexpr std::int64_t kStarvationNs = 1'000'000;  // Go's starvationThresholdNs
constexpr std::uint64_t kCounterOne = std::uint64_t{1} << 32;

std::int32_t wg_counter(std::uint64_t state) { return static_cast<std::int32_t>(state >> 32); }
std::uint32_t wg_waiters(std::uint64_t state) { return static_cast<std::uint32_t>(state); }
}  // namespace

// ---- WaitGroup ----

void WaitGroup::add(int delta) {
  std::uint64_t d = static_cast<std::uint64_t>(static_cast<std::int64_t>(delta)) << 32;
  std::uint64_t state = state_.fetch_add(d, std::memory_order_acq_rel) + d;
  std::int32_t counter = wg_counter(state);
  if (counter < 0) {
    state_.fetch_sub(d, std::memory_order_acq_rel);  // lose nothing: undo
    throw std::logic_error("sync: negative WaitGroup counter");
  }
  if (counter > 0 || wg_waiters(state) == 0) return;
  // The counter reached zero with waiters parked: they keep *this alive until woken.
  detail::Waiter* woken;
  {
    detail::LockGuard guard(mu_);
    woken = waiters_.head;
    std::uint32_t n = 0;
    for (detail::Waiter* w = woken; w; w = w->next) ++n;
    waiters_.head = waiters_.tail = nullptr;
    state_.fetch_sub(n, std::memory_order_acq_rel);
  }
  while (woken) {
    detail::Waiter* next = woken->next;
    detail::ready(woken->g);
    woken = next;
  }
}

void WaitGroup::wait() {
  detail::require_goroutine("sync.WaitGroup.Wait");
  if (wg_counter(state_.load(std::memory_order_acquire)) == 0) return;
  detail::Waiter w;
  w.g = detail::current_g();
  mu_.lock();
  std::uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if (wg_counter(state) == 0) {
      mu_.unlock();
      return;
    }
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel)) break;
  }
  waiters_.push_back(&w);
  detail::park_unlock(detail::WaitReason::waitgroup_wait, mu_);
}

// ---- Mutex ----

bool Mutex::try_lock() {
  std::uint32_t state = state_.load(std::memory_order_relaxed);
  if (state & kLocked) return false;
  return state_.compare_exchange_strong(state, state | kLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed);
}

void Mutex::lock_slow() {
  detail::require_goroutine("sync.Mutex.Lock");
  detail::Waiter w;
  w.g = detail::current_g();
  bool requeue = false;
  for (;;) {
    // A short spin with exponential backoff: the holder is often about to unlock on another
    // worker, and fewer attempts mean less cache-line ping-pong.
    int pause = 4;
    for (int i = 0; i < 10; ++i) {
      std::uint32_t state = state_.load(std::memory_order_relaxed);
      if (!(state & kLocked) &&
          state_.compare_exchange_weak(state, state | kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return;
      }
      for (int k = 0; k < pause; ++k) detail::cpu_relax();
      if (pause < 128) pause *= 2;
    }
    mu_.lock();
    std::uint32_t state = state_.load(std::memory_order_relaxed);
    if (!(state & kLocked)) {
      if (state_.compare_exchange_strong(state, state | kLocked, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
        mu_.unlock();
        return;
      }
      mu_.unlock();
      continue;
    }
    // Locked: announce a waiter (so the holder's unlock takes the slow path), then queue.
    if (!state_.compare_exchange_strong(state, state | kWaiters, std::memory_order_relaxed)) {
      mu_.unlock();
      continue;
    }
    if (w.since_ns == 0) w.since_ns = detail::monotonic_ns();
    w.granted = false;
    if (requeue) {
      waiters_.push_front(&w);  // a woken waiter that lost the race keeps its place
    } else {
      waiters_.push_back(&w);
    }
    detail::park_unlock(detail::WaitReason::mutex_lock, mu_);
    if (w.granted) return;  // starvation mode: the unlocker handed the lock to us
    requeue = true;
  }
}

void Mutex::unlock_slow(std::uint32_t state) {
  if (!(state & kLocked)) throw std::logic_error("sync: unlock of unlocked mutex");
  detail::Waiter* w;
  {
    detail::LockGuard guard(mu_);
    w = waiters_.pop_front();
    std::uint32_t rest = waiters_.empty() ? 0 : kWaiters;
    if (w == nullptr) {
      state_.store(0, std::memory_order_release);
      return;
    }
    if (detail::monotonic_ns() - w->since_ns > kStarvationNs) {
      w->granted = true;  // hand-off: the lock stays locked and now belongs to w
      state_.store(kLocked | rest, std::memory_order_release);
    } else {
      state_.store(rest, std::memory_order_release);
    }
  }
  detail::ready(w->g);
}

// ---- RWMutex ----

void RWMutex::lock() {
  mu_.lock();
  if (!writer_ && readers_ == 0) {
    writer_ = true;
    mu_.unlock();
    return;
  }
  if (detail::current_g() == nullptr) {
    mu_.unlock();
    detail::require_goroutine("sync.RWMutex.Lock");
  }
  detail::Waiter w;
  w.g = detail::current_g();
  waiting_writers_.push_back(&w);
  detail::park_unlock(detail::WaitReason::rwmutex_lock, mu_);
  // Granted: writer_ was set for us by the waker.
}

bool RWMutex::try_lock() {
  detail::LockGuard guard(mu_);
  if (writer_ || readers_ != 0) return false;
  writer_ = true;
  return true;
}

void RWMutex::unlock() {
  detail::Waiter* woken = nullptr;
  {
    detail::LockGuard guard(mu_);
    if (!writer_) throw std::logic_error("sync: Unlock of unlocked RWMutex");
    writer_ = false;
    if (!waiting_readers_.empty()) {
      // Admit every reader that queued behind this writer, so readers are not starved.
      woken = waiting_readers_.head;
      for (detail::Waiter* w = woken; w; w = w->next) ++readers_;
      waiting_readers_.head = waiting_readers_.tail = nullptr;
    } else if (!waiting_writers_.empty()) {
      woken = waiting_writers_.pop_front();
      woken->next = nullptr;
      writer_ = true;
    }
  }
  while (woken) {
    detail::Waiter* next = woken->next;
    detail::ready(woken->g);
    woken = next;
  }
}

void RWMutex::lock_shared() {
  mu_.lock();
  // Once a writer waits, new readers queue behind it: writers are not starved.
  if (!writer_ && waiting_writers_.empty()) {
    ++readers_;
    mu_.unlock();
    return;
  }
  if (detail::current_g() == nullptr) {
    mu_.unlock();
    detail::require_goroutine("sync.RWMutex.RLock");
  }
  detail::Waiter w;
  w.g = detail::current_g();
  waiting_readers_.push_back(&w);
  detail::park_unlock(detail::WaitReason::rwmutex_rlock, mu_);
}

bool RWMutex::try_lock_shared() {
  detail::LockGuard guard(mu_);
  if (writer_ || !waiting_writers_.empty()) return false;
  ++readers_;
  return true;
}

void RWMutex::unlock_shared() {
  detail::Waiter* woken = nullptr;
  {
    detail::LockGuard guard(mu_);
    if (readers_ <= 0) throw std::logic_error("sync: RUnlock of unlocked RWMutex");
    --readers_;
    if (readers_ == 0 && !waiting_writers_.empty()) {
      woken = waiting_writers_.pop_front();
      writer_ = true;
    }
  }
  if (woken) detail::ready(woken->g);
}

// ---- Cond ----

void Cond::wait() {
  detail::require_goroutine("sync.Cond.Wait");
  detail::Waiter w;
  w.g = detail::current_g();
  {
    detail::LockGuard guard(mu_);
    waiters_.push_back(&w);  // queued before unlocking m_: a signal after that finds us
  }
  m_.unlock();
  mu_.lock();
  if (w.granted) {
    mu_.unlock();
  } else {
    w.parked = true;
    detail::park_unlock(detail::WaitReason::cond_wait, mu_);
  }
  m_.lock();
}

void Cond::signal() {
  detail::Waiter* w;
  bool parked = false;
  {
    detail::LockGuard guard(mu_);
    w = waiters_.pop_front();
    if (w) {
      w->granted = true;
      parked = w->parked;
    }
  }
  if (w && parked) detail::ready(w->g);
}

void Cond::broadcast() {
  detail::Waiter* woken = nullptr;
  detail::Waiter** tail = &woken;
  {
    detail::LockGuard guard(mu_);
    while (detail::Waiter* w = waiters_.pop_front()) {
      w->granted = true;
      if (w->parked) {
        *tail = w;
        tail = &w->next;
      }
    }
  }
  while (woken) {
    detail::Waiter* next = woken->next;
    detail::ready(woken->g);
    woken = next;
  }
}

}  // namespace goro
