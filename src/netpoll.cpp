// goro: the network poller (see netpoll.hpp for the design and the wait-slot protocol).
//
// Who touches what:
//  - rg/wg: the waiting goroutine (kPdNil -> kPdWait, and back after it wakes), its commit
//    step on the scheduler (kPdWait -> G*), and wakers (poller, close, deadline), which move
//    a slot to kPdReady/kPdNil with a CAS and ready the G they removed. Only the CAS winner
//    touches the G.
//  - closing, rd, wd: written under PollDesc::mu (rank poll_desc), read without it by the
//    goroutine after it published kPdWait (sequentially consistent on both sides: either the
//    goroutine sees the change, or the writer's unblock sees kPdWait / the G).
//  - seq: bumped under mu at open and close. Epoll events and deadline timers carry the seq
//    they were made for; a stale one (the slot was closed, maybe reused) is ignored. dseq
//    does the same for one deadline that was replaced by another.
//  - PollDesc memory is never freed (chunks of the pool), so a stale event or timer may always
//    read it; the free list is under the pool lock (leaf).
// Lock order: poll_fds (the caller-owned fd table) > PollDesc::mu > sched_mu > timer heap.
// ready() is called with no poller lock held.
#include "netpoll.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <system_error>
#include <unordered_map>

#include "goro/detail/lock.hpp"
#include "park.hpp"
#include "platform.hpp"
#include "scheduler.hpp"
#include "timer.hpp"

namespace goro::detail {

namespace {

constexpr std::uintptr_t kPdNil = 0;
constexpr std::uintptr_t kPdReady = 1;
constexpr std::uintptr_t kPdWait = 2;

constexpr std::uint64_t kWakeTag = 1;  // the eventfd's epoll data (no PollDesc has it)

}  // namespace

struct alignas(64) PollDesc {
  std::atomic<std::uintptr_t> rg{kPdNil};
  std::atomic<std::uintptr_t> wg{kPdNil};
  std::atomic<std::uint32_t> seq{0};
  std::atomic<bool> closing{false};
  // Deadlines in monotonic ns: 0 none, -1 expired, else pending (a timer is armed).
  std::atomic<std::int64_t> rd{0};
  std::atomic<std::int64_t> wd{0};
  int fd = -1;
  Lock mu{LockRank::poll_desc};
  std::uint32_t rdseq GORO_GUARDED_BY(mu) = 0;
  std::uint32_t wdseq GORO_GUARDED_BY(mu) = 0;
  TimerNode* rtimer GORO_GUARDED_BY(mu) = nullptr;
  TimerNode* wtimer GORO_GUARDED_BY(mu) = nullptr;
  PollDesc* free_next = nullptr;  // under the pool lock
};

namespace {

struct Poller {
  int epfd = -1;
  int wakefd = -1;
  std::atomic<bool> wake_pending{false};
  std::atomic<std::int64_t> waiters{0};
  Lock pool_mu{LockRank::leaf};
  PollDesc* free_list GORO_GUARDED_BY(pool_mu) = nullptr;
  // Every PollDesc ever made (chunks are never freed), for netpoll_detach_all.
  std::vector<PollDesc*> chunks GORO_GUARDED_BY(pool_mu);
  static constexpr std::size_t kChunk = 128;
};

std::atomic<Poller*> g_poller{nullptr};
std::once_flag g_poller_once;

[[noreturn]] void throw_errno(int err, const char* what) {
  throw std::system_error(err, std::generic_category(), what);
}

Poller& poller() {
  std::call_once(g_poller_once, [] {
    auto* p = new Poller();  // never destroyed: workers and sockets may outlive statics
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) throw_errno(errno, "goro: epoll_create1");
    p->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->wakefd < 0) throw_errno(errno, "goro: eventfd");
    // Level-triggered on purpose: a non-blocking poll that sees it leaves it for the worker
    // that blocks (only a blocking poll drains it), so a wake-up is never stolen.
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeTag;
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wakefd, &ev) != 0) {
      throw_errno(errno, "goro: epoll_ctl(eventfd)");
    }
    g_poller.store(p, std::memory_order_release);
  });
  return *g_poller.load(std::memory_order_acquire);
}

// An epoll event's data: the PollDesc's address above a 16-bit sequence tag (user-space
// addresses fit in 47 bits on x86-64 and 48 on arm64; PollDescs are 64-aligned).
std::uint64_t pack(PollDesc* pd, std::uint32_t seq) {
  auto addr = reinterpret_cast<std::uintptr_t>(pd);
  return (static_cast<std::uint64_t>(addr) << 16) | (seq & 0xFFFF);
}
PollDesc* unpack(std::uint64_t data, std::uint32_t* seq) {
  *seq = static_cast<std::uint32_t>(data & 0xFFFF);
  return reinterpret_cast<PollDesc*>(static_cast<std::uintptr_t>(data >> 16));
}

PollDesc* pool_get(Poller& pl) {
  LockGuard guard(pl.pool_mu);
  if (pl.free_list == nullptr) {
    auto* chunk = new PollDesc[Poller::kChunk];
    if ((reinterpret_cast<std::uintptr_t>(chunk) >> 47) != 0) std::abort();  // pack() needs it
    pl.chunks.push_back(chunk);
    for (std::size_t i = Poller::kChunk; i-- > 0;) {
      chunk[i].free_next = pl.free_list;
      pl.free_list = &chunk[i];
    }
  }
  PollDesc* pd = pl.free_list;
  pl.free_list = pd->free_next;
  pd->free_next = nullptr;
  return pd;
}

void pool_put(Poller& pl, PollDesc* pd) {
  LockGuard guard(pl.pool_mu);
  pd->free_next = pl.free_list;
  pl.free_list = pd;
}

std::atomic<std::uintptr_t>& slot_of(PollDesc* pd, PollMode mode) {
  return mode == PollMode::write ? pd->wg : pd->rg;
}

// Moves a wait slot forward for a waker: ioready records readiness (kPdReady), otherwise
// (close, deadline) only a waiting goroutine is released. Returns the goroutine to ready.
G* unblock(std::atomic<std::uintptr_t>& slot, bool ioready) {
  for (;;) {
    std::uintptr_t old = slot.load(std::memory_order_seq_cst);
    if (old == kPdReady) return nullptr;
    if (old == kPdNil && !ioready) return nullptr;
    std::uintptr_t next = ioready ? kPdReady : kPdNil;
    if (slot.compare_exchange_weak(old, next, std::memory_order_seq_cst)) {
      return old > kPdWait ? reinterpret_cast<G*>(old) : nullptr;
    }
  }
}

PollResult check(PollDesc* pd, PollMode mode) {
  if (pd->closing.load(std::memory_order_seq_cst)) return PollResult::closed;
  std::atomic<std::int64_t>& d = mode == PollMode::write ? pd->wd : pd->rd;
  if (d.load(std::memory_order_seq_cst) < 0) return PollResult::timeout;
  return PollResult::ready;
}

bool has(PollMode mode, PollMode bit) {
  return (static_cast<unsigned>(mode) & static_cast<unsigned>(bit)) != 0;
}

// A deadline timer's callback (on a worker's scheduler context).
void deadline_fired(PollDesc* pd, std::uint32_t seq, std::uint32_t dseq, PollMode mode) {
  G* g = nullptr;
  {
    LockGuard guard(pd->mu);
    if (pd->seq.load(std::memory_order_relaxed) != seq) return;
    if (mode == PollMode::read) {
      if (pd->rdseq != dseq) return;
      pd->rd.store(-1, std::memory_order_seq_cst);
      g = unblock(pd->rg, false);
    } else {
      if (pd->wdseq != dseq) return;
      pd->wd.store(-1, std::memory_order_seq_cst);
      g = unblock(pd->wg, false);
    }
  }
  if (g != nullptr) ready(g);
}

// Replaces one direction's deadline; returns the goroutine to ready if it expired at once.
G* set_one_deadline(PollDesc* pd, PollMode mode, std::int64_t deadline_ns, std::int64_t now)
    GORO_REQUIRES(pd->mu) {
  const bool read = mode == PollMode::read;
  std::uint32_t& dseq = read ? pd->rdseq : pd->wdseq;
  TimerNode*& timer = read ? pd->rtimer : pd->wtimer;
  std::atomic<std::int64_t>& d = read ? pd->rd : pd->wd;
  ++dseq;
  if (timer != nullptr) {
    timer_stop(timer);  // a callback already running sees the new dseq and does nothing
    timer_release(timer);
    timer = nullptr;
  }
  if (deadline_ns == 0) {
    d.store(0, std::memory_order_seq_cst);
    return nullptr;
  }
  if (deadline_ns <= now) {
    d.store(-1, std::memory_order_seq_cst);
    return unblock(read ? pd->rg : pd->wg, false);
  }
  d.store(deadline_ns, std::memory_order_seq_cst);
  const std::uint32_t seq = pd->seq.load(std::memory_order_relaxed);
  const std::uint32_t s = dseq;
  timer = timer_new_func([pd, seq, s, mode] { deadline_fired(pd, seq, s, mode); }, deadline_ns);
  return nullptr;
}

struct CommitArg {
  std::atomic<std::uintptr_t>* slot;
  G* g;
};

// The park step (on the scheduler, the goroutine off its stack): publish the G in the slot,
// unless readiness or a wake-up replaced kPdWait meanwhile; then the goroutine must not
// sleep, so it is readied at once.
void commit_park(void* arg) {
  auto* c = static_cast<CommitArg*>(arg);
  std::atomic<std::uintptr_t>* slot = c->slot;  // copy out: c lives on the parked stack
  G* g = c->g;
  std::uintptr_t expected = kPdWait;
  if (!slot->compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(g),
                                     std::memory_order_seq_cst)) {
    ready(g);
  }
}

}  // namespace

PollDesc* poll_open(int fd) {
  Poller& pl = poller();
  PollDesc* pd = pool_get(pl);
  std::uint32_t seq;
  {
    LockGuard guard(pd->mu);
    seq = pd->seq.load(std::memory_order_relaxed) + 1;
    pd->seq.store(seq, std::memory_order_relaxed);
    pd->fd = fd;
    pd->rg.store(kPdNil, std::memory_order_relaxed);
    pd->wg.store(kPdNil, std::memory_order_relaxed);
    pd->rd.store(0, std::memory_order_relaxed);
    pd->wd.store(0, std::memory_order_relaxed);
    pd->closing.store(false, std::memory_order_seq_cst);
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = pack(pd, seq);
  if (epoll_ctl(pl.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    {
      LockGuard guard(pd->mu);
      pd->seq.fetch_add(1, std::memory_order_relaxed);
      pd->fd = -1;
    }
    pool_put(pl, pd);
    throw_errno(err, "goro: epoll_ctl(EPOLL_CTL_ADD)");
  }
  return pd;
}

void poll_evict(PollDesc* pd) noexcept {
  G* r;
  G* w;
  {
    LockGuard guard(pd->mu);
    pd->closing.store(true, std::memory_order_seq_cst);
    r = unblock(pd->rg, false);
    w = unblock(pd->wg, false);
  }
  if (r != nullptr) ready(r);
  if (w != nullptr) ready(w);
}

void poll_close(PollDesc* pd) noexcept {
  poll_evict(pd);
  Poller& pl = *g_poller.load(std::memory_order_acquire);  // pd exists, so the poller does
  int fd;
  {
    LockGuard guard(pd->mu);
    for (TimerNode** t : {&pd->rtimer, &pd->wtimer}) {
      if (*t != nullptr) {
        timer_stop(*t);
        timer_release(*t);
        *t = nullptr;
      }
    }
    ++pd->rdseq;
    ++pd->wdseq;
    pd->seq.fetch_add(1, std::memory_order_relaxed);  // stale events and timers: ignored
    fd = pd->fd;
    pd->fd = -1;
  }
  // EBADF/ENOENT mean the owner closed the fd already; the kernel dropped it from the set.
  epoll_ctl(pl.epfd, EPOLL_CTL_DEL, fd, nullptr);
  pool_put(pl, pd);
}

PollResult poll_prepare(PollDesc* pd, PollMode mode) noexcept {
  PollResult r = check(pd, mode);
  if (r != PollResult::ready) return r;
  // Readiness recorded before this attempt is about to be consumed by the syscall itself.
  std::uintptr_t ready_state = kPdReady;
  slot_of(pd, mode).compare_exchange_strong(ready_state, kPdNil, std::memory_order_seq_cst);
  return PollResult::ready;
}

PollResult poll_wait(PollDesc* pd, PollMode mode) {
  G* g = current_g();
  if (g == nullptr) require_goroutine("goro::net I/O");  // throws
  std::atomic<std::uintptr_t>& slot = slot_of(pd, mode);
  Poller& pl = *g_poller.load(std::memory_order_acquire);
  Runtime* rt = current_p()->rt;
  for (;;) {
    PollResult r = check(pd, mode);
    if (r != PollResult::ready) return r;
    std::uintptr_t old = kPdReady;
    if (slot.compare_exchange_strong(old, kPdNil, std::memory_order_seq_cst)) {
      return PollResult::ready;
    }
    if (old != kPdNil) {
      std::fputs("fatal error: goro: two goroutines wait on one fd in the same direction\n",
                 stderr);
      std::abort();
    }
    if (!slot.compare_exchange_strong(old, kPdWait, std::memory_order_seq_cst)) continue;
    // Published: a close or deadline from now on sees kPdWait; one before is seen here.
    if (check(pd, mode) != PollResult::ready) {
      std::uintptr_t w = kPdWait;
      slot.compare_exchange_strong(w, kPdNil, std::memory_order_seq_cst);
      continue;
    }
    CommitArg arg{&slot, g};
    pl.waiters.fetch_add(1, std::memory_order_seq_cst);
    rt->niowait.fetch_add(1, std::memory_order_seq_cst);
    park(WaitReason::io_wait, &commit_park, &arg);
    rt->niowait.fetch_sub(1, std::memory_order_seq_cst);
    pl.waiters.fetch_sub(1, std::memory_order_seq_cst);
    // Woken: by readiness (kPdReady) or by a close/deadline (kPdNil, re-checked above).
    if (slot.exchange(kPdNil, std::memory_order_seq_cst) == kPdReady) return PollResult::ready;
  }
}

void poll_set_deadline(PollDesc* pd, PollMode mode, std::int64_t deadline_ns) {
  G* r = nullptr;
  G* w = nullptr;
  const std::int64_t now = now_ns();
  {
    LockGuard guard(pd->mu);
    if (pd->closing.load(std::memory_order_relaxed)) return;
    if (has(mode, PollMode::read)) r = set_one_deadline(pd, PollMode::read, deadline_ns, now);
    if (has(mode, PollMode::write)) w = set_one_deadline(pd, PollMode::write, deadline_ns, now);
  }
  if (r != nullptr) ready(r);
  if (w != nullptr) ready(w);
}

namespace {

// Caller-owned fds being waited on (wait_readable/wait_writable): registered while a call
// waits, deregistered before the last one returns, so the caller may close the fd at once.
struct FdWaits {
  Lock mu{LockRank::poll_fds};
  struct Entry {
    PollDesc* pd;
    int users;
  };
  std::unordered_map<int, Entry> table GORO_GUARDED_BY(mu);
};

FdWaits& fd_waits() {
  static FdWaits* w = new FdWaits();  // never destroyed, like the poller
  return *w;
}

}  // namespace

PollResult poll_wait_fd(int fd, PollMode mode, std::int64_t deadline_ns) {
  if (current_g() == nullptr) require_goroutine("goro::net::wait_readable/wait_writable");
  if (mode == PollMode::read_write) mode = PollMode::read;
  FdWaits& fw = fd_waits();
  PollDesc* pd;
  {
    LockGuard guard(fw.mu);
    auto it = fw.table.find(fd);
    if (it != fw.table.end()) {
      ++it->second.users;
      pd = it->second.pd;
    } else {
      pd = poll_open(fd);  // throws: nothing recorded yet
      fw.table.emplace(fd, FdWaits::Entry{pd, 1});
    }
  }
  struct Leave {
    FdWaits& fw;
    int fd;
    PollDesc* pd;
    PollMode mode;
    ~Leave() {
      LockGuard guard(fw.mu);
      auto it = fw.table.find(fd);
      if (--it->second.users == 0) {
        fw.table.erase(it);
        poll_close(pd);
      } else {
        poll_set_deadline(pd, mode, 0);
      }
    }
  } leave{fw, fd, pd, mode};
  if (deadline_ns != 0) poll_set_deadline(pd, mode, deadline_ns);
  return poll_wait(pd, mode);
}

bool netpoll_active() noexcept { return g_poller.load(std::memory_order_acquire) != nullptr; }

std::int64_t netpoll_waiters() noexcept {
  Poller* pl = g_poller.load(std::memory_order_acquire);
  return pl == nullptr ? 0 : pl->waiters.load(std::memory_order_seq_cst);
}

int netpoll(std::int64_t delay_ns, G** out, int max) noexcept {
  Poller* pl = g_poller.load(std::memory_order_acquire);
  if (pl == nullptr || max < 2) return 0;
  epoll_event events[128];
  const int cap = max / 2 < 128 ? max / 2 : 128;  // an event may ready a reader and a writer
  timespec ts;
  const timespec* timeout = nullptr;
  if (delay_ns >= 0) {
    ts = to_timespec(delay_ns);
    timeout = &ts;
  }
  int n = epoll_pwait2(pl->epfd, events, cap, timeout, nullptr);
  if (n < 0 && errno == ENOSYS) {  // kernels before 5.11: millisecond granularity
    int ms = delay_ns < 0 ? -1 : static_cast<int>((delay_ns + 999'999) / 1'000'000);
    n = epoll_wait(pl->epfd, events, cap, ms);
  }
  if (n <= 0) return 0;  // EINTR or nothing
  int found = 0;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t data = events[i].data.u64;
    if (data == kWakeTag) {
      if (delay_ns != 0) {  // only the blocking poller drains it (see poller())
        std::uint64_t v;
        [[maybe_unused]] ssize_t got = read(pl->wakefd, &v, sizeof v);
        pl->wake_pending.store(false, std::memory_order_seq_cst);
      }
      continue;
    }
    std::uint32_t seq;
    PollDesc* pd = unpack(data, &seq);
    if ((pd->seq.load(std::memory_order_acquire) & 0xFFFF) != seq) continue;  // stale
    const std::uint32_t ev = events[i].events;
    G* readied[2] = {nullptr, nullptr};
    if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0)
      readied[0] = unblock(pd->rg, true);
    if ((ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) readied[1] = unblock(pd->wg, true);
    for (G* g : readied) {
      if (g == nullptr) continue;
      g->status.store(GStatus::runnable, std::memory_order_relaxed);  // the caller queues it
      out[found++] = g;
    }
  }
  return found;
}

void netpoll_break() noexcept {
  Poller* pl = g_poller.load(std::memory_order_acquire);
  if (pl == nullptr) return;
  if (pl->wake_pending.exchange(true, std::memory_order_seq_cst)) return;
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t put = write(pl->wakefd, &one, sizeof one);
}

void netpoll_detach_all() noexcept {
  Poller* pl = g_poller.load(std::memory_order_acquire);
  if (pl == nullptr) return;
  // The workers are joined: every goroutine of the run that waits for I/O is parked (a G*
  // in its slot) and counted in waiters.
  std::int64_t detached = 0;
  {
    LockGuard guard(pl->pool_mu);
    for (PollDesc* chunk : pl->chunks) {
      for (std::size_t i = 0; i < Poller::kChunk; ++i) {
        for (std::atomic<std::uintptr_t>* slot : {&chunk[i].rg, &chunk[i].wg}) {
          if (slot->load(std::memory_order_relaxed) > kPdWait) {
            slot->store(kPdNil, std::memory_order_relaxed);
            ++detached;
          }
        }
      }
    }
  }
  pl->waiters.fetch_sub(detached, std::memory_order_seq_cst);
  // Every caller-owned fd still registered belongs to a goroutine abandoned in poll_wait_fd
  // (it never ran its clean-up): deregister them; the fds stay the callers'.
  FdWaits& fw = fd_waits();
  LockGuard guard(fw.mu);
  for (auto& [fd, entry] : fw.table) poll_close(entry.pd);
  fw.table.clear();
}

}  // namespace goro::detail
