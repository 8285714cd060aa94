// goro stacks: which overflow protection goroutine stacks get (see docs/ARCHITECTURE.md).
//
//   std::printf("stack guards: %s\n", goro::stack_guard_scheme());
//
// "madvise_guard": every goroutine stack has a guard region below it (Linux 6.13+,
//   MADV_GUARD_INSTALL); any overflow is reported as "fatal error: stack overflow in
//   goroutine N" with exit status 2.
// "mprotect": older kernels (or GORO_STACK_GUARDS=mprotect): the first 16 384 stacks of a
//   run have a guard page each; later ones live in arenas where an overflow is detected by
//   a canary when the goroutine next switches, and a deep one may go undetected.
// The answer is what the next goro::run uses (the kernel is probed once per process; the
// environment variable is read at each run).
#pragma once

namespace goro {

const char* stack_guard_scheme() noexcept;

}  // namespace goro
