// goro: Context (cancellation trees with deadlines) and ErrGroup.
//
// Ownership (as Go's): a child holds its parent (shared_ptr) until the child is cancelled,
// so cancellation reaches a leaf through intermediate contexts the program dropped; a
// parent holds its children weakly (no cycle), and a cancelled child detaches from its
// parent (a long-lived parent does not collect dead children). A pending deadline timer
// holds its context (a context nobody holds still times out, closing done() for whoever
// kept that channel); cancelling stops the timer and drops that reference. Chains may be
// deep: cancellation and release walk them with explicit work lists, not recursion.
//
// Lock order: a context's mu is never held while taking another context's mu (cancel
// collects children under its own lock, releases it, then cancels them one by one), nor
// while calling into the timer heap. Who touches what:
//  - parent: written by make_child before the context is shared; then moved out, under
//    mu, by the one cancel that wins the is_done transition; read by the destructor.
//  - err, children, timer: under mu. done is closed once, by that winning cancel.
#include "goro/context.hpp"

#include <algorithm>
#include <vector>

#include "platform.hpp"
#include "timer.hpp"

namespace goro {
namespace detail {

struct ContextState;

namespace {
// Drops a reference to a context without recursing down a chain of parents: a destructor
// running inside release_context queues its parent instead of releasing it (destructors do
// not park, so the thread-local list cannot change threads under us).
void release_context(std::shared_ptr<ContextState> p) noexcept;
}  // namespace

struct ContextState : std::enable_shared_from_this<ContextState> {
  Chan<std::monostate> done{nullptr};  // nil for background
  std::optional<Clock::time_point> deadline;
  std::atomic<bool> is_done{false};
  Lock mu{LockRank::context};
  std::shared_ptr<ContextState> parent GORO_GUARDED_BY(mu);  // cancellable parents only
  std::exception_ptr err GORO_GUARDED_BY(mu);
  std::vector<std::weak_ptr<ContextState>> children GORO_GUARDED_BY(mu);
  TimerNode* timer GORO_GUARDED_BY(mu) = nullptr;

  ~ContextState() GORO_NO_TSA {  // exclusive: nobody else holds this context
    if (timer) {
      timer_stop(timer);
      timer_release(timer);
    }
    if (parent) release_context(std::move(parent));
  }

  // Cancels this context and every descendant; detaches it from its parent when asked
  // (a parent cancelling its children has already emptied its list).
  void cancel(std::exception_ptr why, bool remove_from_parent) {
    std::vector<std::shared_ptr<ContextState>> pending;
    std::shared_ptr<ContextState> p;
    if (!cancel_one(why, pending, p)) return;
    if (remove_from_parent && p) {
      LockGuard guard(p->mu);
      auto& v = p->children;
      v.erase(std::remove_if(v.begin(), v.end(),
                             [this](const std::weak_ptr<ContextState>& w) {
                               auto s = w.lock();
                               return !s || s.get() == this;
                             }),
              v.end());
    }
    while (!pending.empty()) {
      std::shared_ptr<ContextState> kid = std::move(pending.back());
      pending.pop_back();
      std::shared_ptr<ContextState> kid_parent;  // alive: it is being cancelled above us
      kid->cancel_one(why, pending, kid_parent);
    }
    release_context(std::move(p));
  }

 private:
  // Marks this context done; queues its live children and hands back its parent reference.
  // False when it was done already.
  bool cancel_one(const std::exception_ptr& why,
                  std::vector<std::shared_ptr<ContextState>>& pending,
                  std::shared_ptr<ContextState>& parent_out) {
    std::vector<std::weak_ptr<ContextState>> kids;
    TimerNode* t;
    {
      LockGuard guard(mu);
      if (is_done.load(std::memory_order_relaxed)) return false;
      err = why;
      kids.swap(children);
      t = std::exchange(timer, nullptr);
      parent_out = std::move(parent);
      is_done.store(true, std::memory_order_release);
    }
    done.close();
    if (t) {
      timer_stop(t);
      timer_release(t);  // may drop the timer's reference to us; the caller holds one
    }
    for (auto& weak : kids) {
      if (auto kid = weak.lock()) pending.push_back(std::move(kid));
    }
    return true;
  }
};

namespace {

void release_context(std::shared_ptr<ContextState> p) noexcept {
  thread_local std::vector<std::shared_ptr<ContextState>>* draining = nullptr;
  if (!p) return;
  if (draining != nullptr) {
    draining->push_back(std::move(p));
    return;
  }
  std::vector<std::shared_ptr<ContextState>> list;
  list.push_back(std::move(p));
  draining = &list;
  while (!list.empty()) {
    std::shared_ptr<ContextState> q = std::move(list.back());
    list.pop_back();
    q.reset();  // its destructor may queue its parent on `list`
  }
  draining = nullptr;
}

std::exception_ptr canceled_error() { return std::make_exception_ptr(Canceled()); }
std::exception_ptr deadline_error() { return std::make_exception_ptr(DeadlineExceeded()); }

std::shared_ptr<ContextState> make_child(const Context& parent) {
  auto child = std::make_shared<ContextState>();
  child->done = Chan<std::monostate>();
  child->deadline = parent.deadline();
  const auto& ps = parent.state();
  if (ps && ps->done) {  // a cancellable parent: link, or inherit its cancellation
    {
      LockGuard guard(child->mu);  // not shared yet; the lock only satisfies the analysis
      child->parent = ps;
    }
    std::exception_ptr parent_err;
    {
      LockGuard guard(ps->mu);
      if (ps->is_done.load(std::memory_order_relaxed)) {
        parent_err = ps->err;
      } else {
        // Drop links to children that are gone, so long-lived parents don't grow.
        auto& v = ps->children;
        v.erase(std::remove_if(v.begin(), v.end(), [](auto& w) { return w.expired(); }), v.end());
        v.push_back(child);
      }
    }
    if (parent_err) child->cancel(parent_err, false);
  }
  return child;
}

std::function<void()> canceller(const std::shared_ptr<ContextState>& s) {
  std::weak_ptr<ContextState> weak = s;
  return [weak] {
    if (auto st = weak.lock()) st->cancel(canceled_error(), true);
  };
}

}  // namespace
}  // namespace detail

Context Context::background() {
  static const auto state = std::make_shared<detail::ContextState>();
  return Context(state);
}

RecvChan<std::monostate> Context::done() const {
  return s_ ? s_->done : Chan<std::monostate>(nullptr);
}

bool Context::cancelled() const { return s_ && s_->is_done.load(std::memory_order_acquire); }

std::exception_ptr Context::err() const {
  if (!s_) return nullptr;
  detail::LockGuard guard(s_->mu);
  return s_->err;
}

std::optional<Clock::time_point> Context::deadline() const {
  return s_ ? s_->deadline : std::nullopt;
}

std::pair<Context, std::function<void()>> with_cancel(const Context& parent) {
  auto child = detail::make_child(parent);
  return {Context(child), detail::canceller(child)};
}

std::pair<Context, std::function<void()>> with_deadline(const Context& parent,
                                                        Clock::time_point t) {
  if (auto pd = parent.deadline(); pd && *pd <= t) return with_cancel(parent);
  auto child = detail::make_child(parent);
  child->deadline = t;
  if (!child->is_done.load(std::memory_order_acquire)) {
    auto now = Clock::now();
    if (t <= now) {
      child->cancel(detail::deadline_error(), true);
    } else {
      std::int64_t when =
          std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
      // The timer holds the context until it fires or is stopped (cancel, or the end of
      // run: clear_timers drops its function, which breaks this cycle).
      detail::TimerNode* timer = detail::timer_new_func(
          [st = child] { st->cancel(detail::deadline_error(), true); }, when);
      bool already_done;
      {
        detail::LockGuard guard(child->mu);
        already_done = child->is_done.load(std::memory_order_relaxed);
        if (!already_done) child->timer = timer;
      }
      if (already_done) {
        detail::timer_stop(timer);
        detail::timer_release(timer);
      }
    }
  }
  return {Context(child), detail::canceller(child)};
}

std::pair<Context, std::function<void()>> with_timeout(const Context& parent, Clock::duration d) {
  return with_deadline(parent, Clock::now() + d);
}

// ---- ErrGroup ----

ErrGroup::ErrGroup() : ErrGroup(Context::background()) {}

ErrGroup::ErrGroup(const Context& parent) : ctx_(nullptr) {
  auto [ctx, cancel] = with_cancel(parent);
  ctx_ = std::move(ctx);
  cancel_ = std::move(cancel);
}

ErrGroup::~ErrGroup() {
  if (cancel_) cancel_();
}

void ErrGroup::set_limit(int n) {
  int active = active_.load(std::memory_order_acquire);
  if (active != 0) {
    throw std::logic_error("errgroup: modify limit while " + std::to_string(active) +
                           " goroutines in the group are still active");
  }
  slots_ =
      n < 0 ? Chan<std::monostate>(nullptr) : Chan<std::monostate>(static_cast<std::size_t>(n));
}

void ErrGroup::acquire_slot() {
  if (slots_) slots_.send(std::monostate{});
  active_.fetch_add(1, std::memory_order_acq_rel);
}

void ErrGroup::release_slot() {
  active_.fetch_sub(1, std::memory_order_acq_rel);
  if (slots_) slots_.try_recv();
}

void ErrGroup::fail(std::exception_ptr e) {
  {
    detail::LockGuard guard(mu_);
    if (!first_error_) first_error_ = e;
  }
  cancel_();
}

void ErrGroup::wait() {
  wg_.wait();
  cancel_();
  std::exception_ptr e;
  {
    detail::LockGuard guard(mu_);
    e = first_error_;
  }
  if (e) std::rethrow_exception(e);
}

}  // namespace goro
