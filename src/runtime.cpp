// goro: the runtime's lifecycle: run() from start to teardown, fatal reports, foreign
// threads, and the process-wide state of the active run.
//
// Lifetimes at the end of a run (run_main): the workers are joined, then g_runtime is
// cleared (from then on ready() from any thread does nothing), the run's blocking pool is
// stopped (its calls still running are waited for), its timer heap cleared and closed (a
// timer armed from now on waits in the pending heap for the next run), abandoned
// goroutines are detached from channels and the wait table, and then run() waits for
// foreign operations in flight (ForeignScope) before it releases stacks and the Runtime.
// A foreign operation that starts after the detach can no longer reach a goroutine's stack.
#include "goro/runtime.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "netpoll.hpp"
#include "platform.hpp"
#include "runq.hpp"
#include "scheduler.hpp"
#include "sema.hpp"
#include "timer.hpp"

namespace goro::detail {

namespace {

std::atomic<Runtime*> g_runtime{nullptr};
std::mutex g_run_mu;  // runs are sequential
std::atomic<std::uint64_t> g_run_seq{0};
// Foreign operations in flight (ForeignScope); the end of run waits for zero.
std::atomic<std::int64_t> g_foreign_inflight{0};
// The first fatal report (panic, deadlock) wins; later ones never print.
std::atomic<bool> g_dying{false};

int resolve_procs(int requested) {
  if (requested > 0) return requested;
  if (const char* env = std::getenv("GORO_MAXPROCS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0 && v <= 4096) return static_cast<int>(v);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

std::size_t resolve_stack_size(std::size_t requested) {
#if GORO_ASAN || GORO_TSAN
  constexpr std::size_t kScale = 4;  // sanitizers need bigger frames
#else
  constexpr std::size_t kScale = 1;
#endif
  std::size_t size = requested != 0 ? requested : 256 * 1024;
  return std::max<std::size_t>(size, 32 * 1024) * kScale;
}

std::string describe(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

int resolve_max_threads() {
  if (const char* env = std::getenv("GORO_MAX_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 2 && v <= 1'000'000) return static_cast<int>(v);
  }
  return 10'000;  // Go's SetMaxThreads default
}

[[noreturn]] void die_with(Runtime* rt, const std::string& first_line) {
  if (g_dying.exchange(true, std::memory_order_acq_rel)) {
    for (;;) pause();  // another goroutine's fatal report is being written: exit comes from it
  }
  std::string out = first_line + "\n\n";
  write_dump(rt, out);
  std::fflush(nullptr);
  const char* data = out.data();
  std::size_t left = out.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, data, left);
    if (n <= 0) break;
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  _exit(2);
}

void record_fatal(Runtime* rt, const std::string& first_line, std::exception_ptr panic) {
  std::string text = first_line + "\n\n";
  write_dump(rt, text);
  {
    LockGuard guard(rt->fatal_mu);
    if (!rt->fatal) {
      rt->fatal = true;
      rt->fatal_text = std::move(text);
      rt->panic = panic;
    }
  }
  begin_stop(rt);
}

}  // namespace

Runtime* current_runtime() noexcept { return g_runtime.load(std::memory_order_acquire); }

Runtime::Runtime(int procs, std::size_t stack_size) : nprocs(procs), stacks(stack_size) {}

ForeignScope::ForeignScope() noexcept : active_(current_p() == nullptr) {
  if (active_) g_foreign_inflight.fetch_add(1, std::memory_order_seq_cst);
}

ForeignScope::~ForeignScope() {
  if (active_) g_foreign_inflight.fetch_sub(1, std::memory_order_seq_cst);
}

void fatal_panic(std::exception_ptr e) noexcept {
  Runtime* rt = current_runtime();
  std::string line = "panic: " + describe(e);
  if (!rt->raise) die_with(rt, line);
  record_fatal(rt, line, e);
}

void fatal_exit(Runtime* rt, const std::string& first_line) noexcept { die_with(rt, first_line); }

void fatal_deadlock(Runtime* rt) noexcept {
  const std::string line = "fatal error: all goroutines are asleep - deadlock!";
  if (!rt->raise) die_with(rt, line);
  record_fatal(rt, line, nullptr);
}

void run_main(const RunOptions& opts, void (*main_fn)(void*), void* arg) {
  if (current_g() != nullptr) {
    throw std::logic_error("goro::run: called from inside a goroutine");
  }
  std::unique_lock<std::mutex> one_run(g_run_mu, std::try_to_lock);
  if (!one_run.owns_lock()) {
    throw std::logic_error("goro::run: another run is active (runs must be sequential)");
  }
  const int nprocs = resolve_procs(opts.procs);
  auto rt = std::make_unique<Runtime>(nprocs, resolve_stack_size(opts.stack_size));
  rt->raise = opts.raise;
  rt->run_seq = g_run_seq.fetch_add(1, std::memory_order_relaxed) + 1;
  rt->max_ps = resolve_max_threads() - 1;  // one thread is sysmon's
  if (nprocs > rt->max_ps) fatal_thread_exhaustion(rt.get());
  rt->ps.assign(static_cast<std::size_t>(rt->max_ps), nullptr);
  for (int i = 0; i < nprocs; ++i) rt->ps[i] = new_p(rt.get(), i);
  rt->nps.store(nprocs, std::memory_order_release);
  rt->nworkers.store(nprocs, std::memory_order_relaxed);

  struct MainClosure {
    void (*fn)(void*);
    void* arg;
    void operator()() const { fn(arg); }
  };
  P* p0 = rt->ps[0];
  void* where = nullptr;
  G* main_g = new_goroutine(p0, sizeof(MainClosure), alignof(MainClosure), &where);
  ::new (where) MainClosure{main_fn, arg};
  commit_goroutine(rt.get(), main_g, &closure_entry<MainClosure>, __builtin_return_address(0));
  runq_put(p0, main_g, false);

  g_runtime.store(rt.get(), std::memory_order_release);
  adopt_pending_timers(rt.get());               // armed while no run was active (timer.hpp)
  sysmon_start(rt.get(), opts.handle_sigquit);  // first: main may raise SIGQUIT at once
  for (int i = 0; i < nprocs; ++i) rt->ps[i]->thread = std::thread(worker_main, rt->ps[i]);
  for (int i = 0; i < nprocs; ++i) rt->ps[i]->thread.join();
  // The workers left only once the runtime was stopping, and sysmon starts no spare after
  // it sees that under ps_mu: the spares are all published now.
  int nps;
  {
    LockGuard guard(rt->ps_mu);
    nps = rt->nps.load(std::memory_order_relaxed);
  }
  for (int i = nprocs; i < nps; ++i) rt->ps[i]->thread.join();
  sysmon_stop(rt.get());  // serves SIGQUIT until here: a run stuck at its end can be dumped
  g_runtime.store(nullptr, std::memory_order_seq_cst);

  // Teardown: nothing of this run keeps running; abandoned goroutines are released.
  rt->blocking.stop();
  clear_timers(rt.get());
  // Collect the abandoned goroutines first: detaching takes channel locks, which rank
  // before the stack pool's lock that for_each_slot holds.
  std::vector<G*> abandoned;
  rt->stacks.for_each_slot([&abandoned](char* lo, std::size_t size) {
    G* g = goroutine_in_slot(lo, size);
    if (g->live_magic.load(std::memory_order_acquire) == kLiveMagic) abandoned.push_back(g);
  });
  for (G* g : abandoned) {
    detach_chan_waiters(g);
    destroy_context(g->ctx);
    g->live_magic.store(0, std::memory_order_relaxed);
  }
  sema_clear_all();
  netpoll_detach_all();
  // Foreign operations that started before the detach may still write into a waiter's
  // stack slot or read the runtime: let them finish before anything is unmapped.
  while (g_foreign_inflight.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  for (int i = 0; i < nps; ++i) {
    rt->stacks.drain(rt->ps[i]->stacks);
    delete rt->ps[i];
  }
  rt->ps.clear();

  bool fatal;
  std::string text;
  std::exception_ptr panic;
  {
    LockGuard guard(rt->fatal_mu);
    fatal = rt->fatal;
    text = rt->fatal_text;
    panic = rt->panic;
  }
  rt.reset();  // unmaps every stack
  one_run.unlock();
  if (!fatal) return;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (!panic) throw goro::Deadlock(text);
  try {
    std::rethrow_exception(panic);
  } catch (...) {
    throw goro::Panic(text);  // nests the original exception
  }
}

}  // namespace goro::detail

namespace goro {

std::size_t num_goroutines() {
  detail::ForeignScope foreign;  // callable from any thread, also while run() ends
  detail::Runtime* rt = detail::current_runtime();
  return rt ? static_cast<std::size_t>(rt->live.load(std::memory_order_relaxed)) : 0;
}

int procs() {
  detail::ForeignScope foreign;
  detail::Runtime* rt = detail::current_runtime();
  return rt ? rt->nprocs : 0;
}

ForeignThread::ForeignThread() {
  detail::ForeignScope scope;
  detail::Runtime* rt = detail::current_runtime();
  if (rt == nullptr) {
    throw std::logic_error("goro::ForeignThread: created outside goro::run");
  }
  rt->nforeign.fetch_add(1, std::memory_order_seq_cst);
  run_seq_ = rt->run_seq;
}

ForeignThread::ForeignThread(ForeignThread&& other) noexcept
    : run_seq_(std::exchange(other.run_seq_, 0)) {}

ForeignThread& ForeignThread::operator=(ForeignThread&& other) noexcept {
  if (this != &other) {
    release();
    run_seq_ = std::exchange(other.run_seq_, 0);
  }
  return *this;
}

ForeignThread::~ForeignThread() { release(); }

void ForeignThread::release() noexcept {
  if (run_seq_ == 0) return;
  const std::uint64_t seq = std::exchange(run_seq_, 0);
  detail::ForeignScope scope;
  detail::Runtime* rt = detail::current_runtime();
  if (rt == nullptr || rt->run_seq != seq) return;  // its run is over
  // The last registration gone: goroutines it might have woken may now be deadlocked.
  if (rt->nforeign.fetch_sub(1, std::memory_order_seq_cst) == 1) detail::recheck_deadlock(rt);
}

void dump(std::ostream& out) {
  std::string text;
  {
    detail::ForeignScope foreign;  // a monitor thread may race the end of run()
    detail::Runtime* rt = detail::current_runtime();
    if (rt == nullptr) return;
    detail::write_dump(rt, text);
  }
  out << text;
}

}  // namespace goro
