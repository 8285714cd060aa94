// goro: blocking() — runs a call that blocks its OS thread on a helper thread while the
// calling goroutine is parked, so the worker keeps running other goroutines.
//
// The pool grows on demand (up to kMaxThreads; past that, calls queue) and idle helpers
// stay for reuse. While a call is in flight, rt->nblocking > 0, so the deadlock detector
// knows a wake-up can still come. The helper readies the goroutine before decrementing
// nblocking, so there is no instant at which the goroutine is neither counted nor queued.
// errno travels back: the caller sees the errno that f left on the helper thread.
// The pool belongs to the Runtime (Runtime::blocking); the end of run() stops it: calls
// still queued never start, calls running are waited for (nothing of a run keeps running
// after run returns).
#include "blocking.hpp"

#include <cerrno>

#include "scheduler.hpp"

namespace goro::detail {

void BlockingPool::submit(BlockingCall* call) {
  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(call);
  // A helper that was notified but has not woken yet still counts as idle: compare the
  // calls not yet taken with the idle helpers, or two quick submits would both rely on the
  // same helper (and a call waiting for the other would never return).
  if (queue_.size() > idle_ && threads_.size() < kMaxThreads) {
    threads_.emplace_back([this] { loop(); });
  } else {
    cv_.notify_one();
  }
}

void BlockingPool::stop() noexcept {
  std::vector<std::thread> threads;
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    queue_.clear();
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = false;
  idle_ = 0;
}

void BlockingPool::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    while (queue_.empty() && !stopping_) {
      ++idle_;
      cv_.wait(lock);
      --idle_;
    }
    if (stopping_) return;
    BlockingCall* call = queue_.front();
    queue_.pop_front();
    lock.unlock();
    errno = 0;  // f's own errno, not what the helper's previous call left
    try {
      call->fn(call->arg);
    } catch (...) {
      call->error = std::current_exception();
    }
    call->err_no = errno;
    Runtime* rt = call->rt;
    ready(call->g);  // the goroutine (and *call, on its stack) may run from here on
    // Counted until after the ready(): there is no instant at which the goroutine is
    // neither counted nor queued. The goroutine may have run and blocked again before this
    // decrement, while the last idle worker saw nblocking > 0 and slept: if this was the
    // last call, wake a worker to run the deadlock check again. rt outlives every helper:
    // the end of run stops this pool before it releases the Runtime.
    if (rt->nblocking.fetch_sub(1, std::memory_order_seq_cst) == 1) recheck_deadlock(rt);
    lock.lock();
  }
}

void run_blocking(void (*fn)(void*), void* arg) {
  require_goroutine("goro::blocking");
  BlockingCall call{fn, arg, current_g(), current_runtime(), nullptr, 0};
  call.rt->nblocking.fetch_add(1, std::memory_order_seq_cst);
  // The submit runs on the scheduler after the switch: a helper may ready us at once.
  park(
      WaitReason::blocking_call,
      [](void* c) {
        auto* call = static_cast<BlockingCall*>(c);
        call->rt->blocking.submit(call);
      },
      &call);
  errno = call.err_no;  // a C call's error cause, as the caller would have seen it
  if (call.error) std::rethrow_exception(call.error);
}

}  // namespace goro::detail
