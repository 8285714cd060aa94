// goro: context creation for goroutines and worker threads. The switch itself is inline in
// context_switch.hpp; it uses Boost.Context's fcontext (jump_fcontext), whose assembly
// exists for x86-64 and aarch64 (and more), so goro stays portable.
#include "context_switch.hpp"

#include <pthread.h>

namespace goro::detail {

void make_context(ExecContext& ctx, void* stack_lo, std::size_t size,
                  void (*entry)(bctx::transfer_t), void* tsan_fiber) noexcept {
  char* top = static_cast<char*>(stack_lo) + size;
  ctx.fctx = bctx::make_fcontext(top, size, entry);
  ctx.stack_lo = stack_lo;
  ctx.stack_size = size;
  ctx.asan_fake_stack = nullptr;
#if GORO_TSAN
  ctx.tsan_fiber = tsan_fiber != nullptr ? tsan_fiber : __tsan_create_fiber(0);
#else
  (void)tsan_fiber;
#endif
}

void init_thread_context(ExecContext& ctx) noexcept {
  ctx.fctx = nullptr;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* lo = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &lo, &size);
    ctx.stack_lo = lo;
    ctx.stack_size = size;
    pthread_attr_destroy(&attr);
  }
#if GORO_TSAN
  ctx.tsan_fiber = __tsan_get_current_fiber();
#endif
}

void destroy_context(ExecContext& ctx) noexcept {
#if GORO_TSAN
  if (ctx.tsan_fiber) __tsan_destroy_fiber(ctx.tsan_fiber);
#endif
  ctx.tsan_fiber = nullptr;
  ctx.fctx = nullptr;
}

}  // namespace goro::detail
