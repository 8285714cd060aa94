// goro internal: the run queues (Go's runq, runnext and the global queue).
//
// Invariants:
//  - A P's local queue is a ring of kRunQueueSize slots: only its owner pushes (at the tail)
//    and pops (at the head, with a CAS); thieves take up to half from the head with a CAS
//    on runq_head. runq_tail is written by the owner only.
//  - runnext holds at most one goroutine, readied by a hand-off on this P; it runs before
//    the queue, for at most a bounded streak, and thieves take it only after a short delay.
//  - The global queue (gq_head/gq_tail) is guarded by Runtime::sched_mu; gq_size mirrors
//    its length for lock-free emptiness checks.
//  - A goroutine is in at most one queue (or runnext) at a time, and only while runnable.
#pragma once

#include <cstdint>

#include "scheduler.hpp"

namespace goro::detail {

void global_put_batch(Runtime* rt, G** batch, std::uint32_t n);
void global_put(Runtime* rt, G* g);
// Takes up to max goroutines from the global queue: returns one, queues the rest locally.
G* global_get(P* p, std::uint32_t max);

// Pushes g on p's queue (p's own worker only); next: into runnext, the old one to the tail.
void runq_put(P* p, G* g, bool next);
G* runq_get(P* p);  // p's own worker only
bool runq_empty(P* p);
// Takes half of victim's queue into batch; with steal_next, its runnext when that is all.
std::uint32_t runq_grab(P* victim, G** batch, bool steal_next);

}  // namespace goro::detail
