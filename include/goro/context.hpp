// goro context and errgroup: Go's context.Context and golang.org/x/sync/errgroup.
//
//   auto [ctx, cancel] = goro::with_timeout(goro::Context::background(), 2s);
//   goro::ErrGroup group(ctx);
//   group.set_limit(8);                          // at most 8 at once; go() blocks past it
//   for (auto& url : urls)
//     group.go([&, url] { fetch(group.context(), url); });   // throw to fail the group
//   group.wait();                                // rethrows the first failure
//   cancel();
//
// done() is closed when the context is cancelled or its deadline passes; cancelling a
// context cancels its children. Background's done() is a nil channel (never ready).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <variant>

#include "goro/chan.hpp"
#include "goro/detail/lock.hpp"
#include "goro/sync.hpp"
#include "goro/time.hpp"

namespace goro {

struct Canceled : std::runtime_error {
  Canceled() : std::runtime_error("context canceled") {}
};
struct DeadlineExceeded : std::runtime_error {
  DeadlineExceeded() : std::runtime_error("context deadline exceeded") {}
};

namespace detail {
struct ContextState;  // src/context.cpp
}

class Context {
 public:
  static Context background();
  RecvChan<std::monostate> done() const;  // closed when cancelled or past the deadline
  bool cancelled() const;
  std::exception_ptr err() const;  // Canceled or DeadlineExceeded once done, else null
  std::optional<Clock::time_point> deadline() const;

  explicit Context(std::shared_ptr<detail::ContextState> s) : s_(std::move(s)) {}
  const std::shared_ptr<detail::ContextState>& state() const { return s_; }

 private:
  std::shared_ptr<detail::ContextState> s_;
};

std::pair<Context, std::function<void()>> with_cancel(const Context& parent);
std::pair<Context, std::function<void()>> with_timeout(const Context& parent, Clock::duration d);
std::pair<Context, std::function<void()>> with_deadline(const Context& parent, Clock::time_point t);

class ErrGroup {
 public:
  ErrGroup();
  explicit ErrGroup(const Context& parent);
  ~ErrGroup();
  ErrGroup(const ErrGroup&) = delete;
  ErrGroup& operator=(const ErrGroup&) = delete;

  // Cancelled at the first failure and when wait() returns.
  Context context() const { return ctx_; }
  // At most n goroutines of the group at once (n < 0: no limit). Throws std::logic_error
  // while goroutines of the group are active.
  void set_limit(int n);
  // Runs f in a new goroutine; blocks while the limit is reached. f throws to fail.
  template <class F>
  [[gnu::noinline]] void go(F&& f) {
    acquire_slot();
    wg_.add(1);
    try {
      detail::spawn(__builtin_return_address(0),
                    [self = this, fn = std::decay_t<F>(std::forward<F>(f))]() mutable {
                      try {
                        fn();
                      } catch (...) {
                        self->fail(std::current_exception());
                      }
                      self->release_slot();
                      self->wg_.done();  // last touch of *self: wait() may return now
                    });
    } catch (...) {
      release_slot();
      wg_.done();
      throw;
    }
  }
  // Waits for every goroutine of the group; rethrows the first exception.
  void wait();

 private:
  void acquire_slot();
  void release_slot();
  void fail(std::exception_ptr e);

  Context ctx_;
  std::function<void()> cancel_;
  WaitGroup wg_;
  Chan<std::monostate> slots_{nullptr};  // nil: no limit
  std::atomic<int> active_{0};
  detail::Lock mu_{detail::LockRank::context};
  std::exception_ptr first_error_ GORO_GUARDED_BY(mu_);
};

}  // namespace goro
