// goro: goroutine stack reservation, recycling and overflow detection (see stack.hpp).
#include "stack.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "platform.hpp"
#include "scheduler.hpp"

#if GORO_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if GORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace goro::detail {

namespace {

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

void* map_reserve(std::size_t len) {
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

// The canary word sits in the top 8 bytes of an arena slot. The goroutine in the slot above
// reads it (switch-out check) while the slot's own acquire/release may write it: atomics.
std::atomic_ref<std::uint64_t> canary_word(char* slot_top) noexcept {
  return std::atomic_ref<std::uint64_t>(
      *reinterpret_cast<std::uint64_t*>(slot_top - sizeof(kStackCanary)));
}

void write_canary(char* slot_top) noexcept {
  canary_word(slot_top).store(kStackCanary, std::memory_order_relaxed);
}

}  // namespace

StackPool::StackPool(std::size_t stack_size)
    : stack_size_((stack_size + page_size() - 1) / page_size() * page_size()), page_(page_size()) {}

StackPool::~StackPool() {
  LockGuard guard(mu_);
#if GORO_TSAN
  for (Stack& s : free_) {
    if (s.tsan_fiber) __tsan_destroy_fiber(s.tsan_fiber);
  }
#endif
  for (const Mapping& m : mappings_) munmap(m.addr, m.len);
  mappings_.clear();
  free_.clear();
}

bool StackPool::canary_intact(const Stack& s) noexcept {
  if (s.guarded) return true;
  return canary_word(s.lo).load(std::memory_order_relaxed) == kStackCanary;
}

void StackPool::carve_arena() {
  // A pad page below slot 0 carries slot 0's "neighbour" canary. Nothing is touched here
  // (the pool lock is held): acquire() writes the canaries, outside any lock.
  std::size_t len = page_ + kArenaSlots * stack_size_;
  char* base = static_cast<char*>(map_reserve(len));
  mappings_.push_back({base, len});
  for (std::size_t i = 0; i < kArenaSlots; ++i) {
    char* lo = base + page_ + i * stack_size_;
    free_.push_back(Stack{lo, stack_size_, false, lo + stack_size_});
  }
}

void StackPool::refill(StackCache& cache) {
  LockGuard guard(mu_);
  if (free_.empty()) {
    if (guarded_count_ < kGuardedBudget) {
      std::size_t len = page_ + stack_size_;
      char* base = static_cast<char*>(map_reserve(len));
      if (mprotect(base, page_, PROT_NONE) != 0) {
        munmap(base, len);
        throw std::bad_alloc();
      }
      mappings_.push_back({base, len});
      ++guarded_count_;
      cache.stacks.push_back(Stack{base + page_, stack_size_, true, base + page_ + stack_size_});
      return;
    }
    carve_arena();
  }
  std::size_t take = std::min<std::size_t>(free_.size(), kCacheMax / 2);
  for (std::size_t i = 0; i < take; ++i) {
    cache.stacks.push_back(free_.back());
    free_.pop_back();
  }
}

Stack StackPool::acquire(StackCache& cache) {
  if (cache.stacks.empty()) refill(cache);
  Stack s = cache.stacks.back();
  cache.stacks.pop_back();
#if GORO_ASAN
  // A recycled or abandoned stack may still carry poisoned redzones of dead frames.
  __asan_unpoison_memory_region(s.lo, s.size);
#endif
  if (!s.guarded) {
    write_canary(s.lo + s.size);  // ours, checked by the slot above
    write_canary(s.lo);           // the slot below's (or the pad's), checked by us
  }
  return s;
}

void StackPool::release(StackCache& cache, Stack s) noexcept {
  if (cache.stacks.size() < kCacheMax) {
    cache.stacks.push_back(s);
    return;
  }
  // Move half of the cache (and s) to the global pool.
  std::size_t move = kCacheMax / 2;
  LockGuard guard(mu_);
  for (std::size_t i = 0; i <= move; ++i) {
    Stack t = i == move ? s : cache.stacks.back();
    if (i != move) cache.stacks.pop_back();
    char* keep_from = t.lo + t.size - page_;  // the top page: G, closure, canary
    if (free_.size() >= kScavengeAbove && t.low_water != nullptr &&
        t.low_water < keep_from - page_) {
      char* from = t.lo + (static_cast<std::size_t>(t.low_water - t.lo) / page_) * page_;
      madvise(from, static_cast<std::size_t>(keep_from - from), MADV_DONTNEED);
      t.low_water = keep_from;
    }
    free_.push_back(t);
  }
}

void StackPool::drain(StackCache& cache) noexcept {
  LockGuard guard(mu_);
  for (Stack& s : cache.stacks) free_.push_back(s);
  cache.stacks.clear();
}

// ---- overflow detection ----

namespace {

[[maybe_unused]] struct sigaction g_previous_segv;
[[maybe_unused]] std::once_flag g_handler_once;

[[maybe_unused]] void segv_handler(int sig, siginfo_t* info, void* uctx) {
  G* g = current_g_for_signal();
  if (g != nullptr) {
    const char* addr = static_cast<const char*>(info->si_addr);
    const char* lo = g->stack.lo;
    // A fault in the guard page, or anywhere within 64 KiB below the stack (a large frame
    // can jump past a single guard page), is an overflow of this goroutine's stack.
    if (addr < lo + 256 && addr + 64 * 1024 >= lo) report_stack_overflow(g->id);
  }
  // Not ours: restore the previous disposition and let the fault happen again.
  sigaction(SIGSEGV, &g_previous_segv, nullptr);
  (void)sig;
  (void)uctx;
}

}  // namespace

void report_stack_overflow(std::uint64_t goroutine_id) noexcept {
  char buf[96];
  char digits[24];
  int n = 0;
  std::uint64_t v = goroutine_id;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  const char prefix[] = "fatal error: stack overflow in goroutine ";
  std::size_t len = 0;
  for (char c : prefix) {
    if (c) buf[len++] = c;
  }
  while (n > 0) buf[len++] = digits[--n];
  buf[len++] = '\n';
  ssize_t ignored = write(STDERR_FILENO, buf, len);
  (void)ignored;
  _exit(2);
}

void* install_overflow_handler() noexcept {
#if GORO_ASAN || GORO_TSAN
  return nullptr;  // the sanitizers own SIGSEGV and report overflows themselves
#else
  std::call_once(g_handler_once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_segv);
  });
  std::size_t size = 64 * 1024;
  void* mem = std::malloc(size);
  if (mem == nullptr) return nullptr;
  stack_t ss;
  ss.ss_sp = mem;
  ss.ss_size = size;
  ss.ss_flags = 0;
  sigaltstack(&ss, nullptr);
  return mem;
#endif
}

void remove_overflow_handler(void* altstack) noexcept {
  if (altstack == nullptr) return;
  stack_t ss;
  std::memset(&ss, 0, sizeof(ss));
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  std::free(altstack);
}

}  // namespace goro::detail
