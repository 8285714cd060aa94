// goro internal: the network poller (Go's netpoll.go + netpoll_epoll.go).
//
// One epoll instance for the process, edge-triggered; every socket is registered once for
// its whole life (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) with a PollDesc. There is no
// poller thread: a worker that finds nothing to run polls without blocking, and one idle
// worker at a time sleeps in epoll_wait (timeout = the next timer) instead of its futex;
// wakep() and timers wake it through an eventfd.
//
// A PollDesc has one wait slot per direction (Go's rg/wg), an atomic word that is
//   kPdNil    nobody waits, no readiness recorded
//   kPdReady  readiness arrived that nobody has consumed yet
//   kPdWait   a goroutine is about to park (committing)
//   a G*      that goroutine is parked
// The poller (or close, or a deadline) moves the slot forward with a CAS and readies the G it
// removed; the goroutine commits its park with a CAS kPdWait -> G* that runs on the scheduler
// after the switch and, if it fails (readiness or a wake-up came in between), readies itself.
// So readiness that arrives between a failed read() and the park is never lost.
//
// PollDescs live in chunks that are never freed; an epoll event carries (slot, sequence) and a
// stale event for a closed and reused slot is ignored. A deadline is a runtime timer whose
// callback carries the same (slot, sequence) pair.
//
// Lifetimes: the owner (a net::Conn, ...) calls poll_open when it takes the fd and
// poll_close before it closes the fd. poll_evict wakes every parked goroutine (they see
// PollResult::closed); the owner must make sure that no call on pd is in flight any more
// when it calls poll_close (goro::net counts operations per fd, as Go's fdMutex does): the
// slot may be reused by the next poll_open at once.
// Lock: PollDesc::mu (rank poll_desc) guards deadlines and the closing flag; it is taken
// after channel and wait-table locks and before sched_mu and the timer heap.
#pragma once

#include <cstdint>

namespace goro::detail {

struct PollDesc;

enum class PollMode : std::uint8_t { read = 1, write = 2, read_write = 3 };
enum class PollResult : std::uint8_t { ready, timeout, closed };

// Registers a non-blocking fd with the poller. Throws std::system_error (epoll_ctl's errno).
PollDesc* poll_open(int fd);
// Evicts pd, stops its deadline timers, deregisters the fd and returns pd to the pool; no
// call on pd may be in flight. The caller closes the fd afterwards. Callable from any
// thread, also outside run.
void poll_close(PollDesc* pd) noexcept;
// Marks pd closing and wakes its waiters without deregistering (Go's evict): a close() from
// another goroutine calls this first, then poll_close once it owns the fd exclusively.
void poll_evict(PollDesc* pd) noexcept;

// Before a read()/write() attempt: PollResult::closed or ::timeout if the call must fail
// right away (evicted, or that direction's deadline has passed), else ::ready.
PollResult poll_prepare(PollDesc* pd, PollMode mode) noexcept;
// Parks the calling goroutine (wait reason `IO wait`) until pd is ready in `mode` (read or
// write, not both), its deadline passes or it is evicted. Must run inside a goroutine.
PollResult poll_wait(PollDesc* pd, PollMode mode);
// Sets the absolute deadline (monotonic ns, 0 = none, in the past = already expired) of one
// or both directions; a goroutine parked in that direction sees the new deadline at once.
void poll_set_deadline(PollDesc* pd, PollMode mode, std::int64_t deadline_ns);

// Waits until a caller-owned fd is readable/writable (goro::net::wait_readable): registers
// the fd for the duration of the call only, so the caller may close it afterwards and its
// number be reused. deadline_ns: 0 = none. Returns ready or timeout.
PollResult poll_wait_fd(int fd, PollMode mode, std::int64_t deadline_ns);

// --- Scheduler side (idle.cpp, runtime.cpp, sysmon) ---
struct G;
// True once the poller exists (the first fd was registered in this process).
bool netpoll_active() noexcept;
// Goroutines parked in poll_wait right now (any run); 0 means polling cannot find anything.
std::int64_t netpoll_waiters() noexcept;
// Collects up to max goroutines whose I/O is ready into out (it holds max; max >= 2), waiting at
// most delay_ns (0 = do not block, < 0 = until an event or netpoll_break). It marks them
// runnable; the caller queues them.
int netpoll(std::int64_t delay_ns, G** out, int max) noexcept;
// Interrupts a worker blocked in netpoll (coalesced: many calls, one eventfd write).
void netpoll_break() noexcept;
// End of run: forgets every goroutine still parked on a PollDesc (abandoned with the run).
void netpoll_detach_all() noexcept;

}  // namespace goro::detail
