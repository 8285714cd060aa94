// goro internal: switching between execution contexts (a worker's scheduler context "g0"
// and goroutine stacks), with the sanitizer annotations that make ASan and TSan understand
// the switch.
//
// Invariants:
//  - Every switch goes through switch_context(); every context that is resumed calls
//    finish_switch() first thing, which stores the suspended context's handle into the
//    ExecContext that the switcher passed (boost fcontext hands the handle to the target).
//  - A context that switches away for the last time passes `exiting = true` so ASan drops
//    its fake stack.
#pragma once

#include <boost/context/detail/fcontext.hpp>
#include <cstddef>

#include "platform.hpp"

#if GORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if GORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace goro::detail {

namespace bctx = boost::context::detail;

struct ExecContext {
  bctx::fcontext_t fctx = nullptr;
  // The stack this context runs on (ASan needs it to switch its shadow bookkeeping).
  const void* stack_lo = nullptr;
  std::size_t stack_size = 0;
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;
};

// Called first thing by a context that just got control: stores the handle of the context
// that switched away (boost fcontext delivers it to the target) where the switcher asked.
inline void finish_switch_self(bctx::transfer_t t, ExecContext& self) noexcept {
  auto* from = static_cast<ExecContext*>(t.data);
  from->fctx = t.fctx;
#if GORO_ASAN
  __sanitizer_finish_switch_fiber(self.asan_fake_stack, nullptr, nullptr);
#else
  (void)self;
#endif
}

// Suspends `from` and resumes `to`. Returns when something switches back to `from`.
inline void switch_context(ExecContext& from, ExecContext& to, bool exiting = false) noexcept {
#if GORO_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &from.asan_fake_stack, to.stack_lo,
                                 to.stack_size);
#else
  (void)exiting;
#endif
#if GORO_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
  bctx::transfer_t t = bctx::jump_fcontext(to.fctx, &from);
  finish_switch_self(t, from);
}

// Prepares `ctx` to start running entry(transfer) on [stack_lo, stack_lo + size). Under TSan
// it reuses `tsan_fiber` when given (creating a TSan fiber is costly), else creates one.
void make_context(ExecContext& ctx, void* stack_lo, std::size_t size,
                  void (*entry)(bctx::transfer_t), void* tsan_fiber = nullptr) noexcept;
// Describes the calling thread's own stack as a context (a worker's g0).
void init_thread_context(ExecContext& ctx) noexcept;
void destroy_context(ExecContext& ctx) noexcept;

}  // namespace goro::detail
