// goro: goroutine stack reservation, recycling and overflow detection (see stack.hpp).
#include "stack.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "goro/stack.hpp"
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

// MADV_GUARD_INSTALL (Linux 6.13): Debian 12's headers lack the name.
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace {

bool kernel_has_guard_install() noexcept {
  static const bool has = [] {
    std::size_t len = 2 * page_size();
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return false;
    bool ok = madvise(p, page_size(), MADV_GUARD_INSTALL) == 0;
    munmap(p, len);
    return ok;
  }();
  return has;
}

}  // namespace

StackGuards default_stack_guards() noexcept {
  const char* env = std::getenv("GORO_STACK_GUARDS");
  if (env != nullptr && std::strcmp(env, "mprotect") == 0) return StackGuards::mprotect;
  return kernel_has_guard_install() ? StackGuards::madvise_guard : StackGuards::mprotect;
}

const char* stack_guards_name(StackGuards g) noexcept {
  return g == StackGuards::madvise_guard ? "madvise_guard" : "mprotect";
}

namespace {
// Under TSan: kTsanMaxGoroutines, or less with GORO_TSAN_GOROUTINE_LIMIT (tests use it to
// reach the limit without creating 8 000 TSan fibers).
std::size_t tsan_goroutine_limit() noexcept {
  if (const char* env = std::getenv("GORO_TSAN_GOROUTINE_LIMIT")) {
    char* end = nullptr;
    unsigned long v = std::strtoul(env, &end, 10);
    if (end != env && *end == '\0' && v > 0 && v < kTsanMaxGoroutines) return v;
  }
  return kTsanMaxGoroutines;
}
}  // namespace

StackPool::StackPool(std::size_t stack_size)
    : stack_size_((stack_size + page_size() - 1) / page_size() * page_size()),
      page_(page_size()),
      guards_(default_stack_guards()),
      tsan_limit_(tsan_goroutine_limit()) {}

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
  cold_.clear();
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
  mappings_.push_back({base, len, base + page_, stack_size_, kArenaSlots});
  for (std::size_t i = 0; i < kArenaSlots; ++i) {
    char* lo = base + page_ + i * stack_size_;
    free_.push_back(Stack{lo, stack_size_, false, lo + stack_size_});
  }
}

void StackPool::carve_guarded_arena() {
  // [guard | stack] per slot, one mapping; the guards are not VMAs (MADV_GUARD_INSTALL), so
  // any number of stacks fits under vm.max_map_count. A guard survives MADV_DONTNEED.
  const std::size_t stride = kGuardBytes + stack_size_;
  const std::size_t len = kGuardArenaSlots * stride;
  char* base = static_cast<char*>(map_reserve(len));
  for (std::size_t i = 0; i < kGuardArenaSlots; ++i) {
    if (madvise(base + i * stride, kGuardBytes, MADV_GUARD_INSTALL) != 0) {
      munmap(base, len);
      throw std::bad_alloc();
    }
  }
  mappings_.push_back({base, len, base + kGuardBytes, stride, kGuardArenaSlots});
  // Slot 0 is handed out last (the free list is LIFO): lower addresses are used first.
  for (std::size_t i = kGuardArenaSlots; i-- > 0;) {
    char* lo = base + i * stride + kGuardBytes;
    free_.push_back(Stack{lo, stack_size_, true, lo + stack_size_});
  }
}

void StackPool::refill(StackCache& cache) {
  LockGuard guard(mu_);
  if (free_.empty() && cold_.empty()) {
    if (guards_ == StackGuards::madvise_guard) {
      carve_guarded_arena();
    } else if (guarded_count_ < kGuardedBudget) {
      std::size_t len = page_ + stack_size_;
      char* base = static_cast<char*>(map_reserve(len));
      if (mprotect(base, page_, PROT_NONE) != 0) {
        munmap(base, len);
        throw std::bad_alloc();
      }
      mappings_.push_back({base, len, base + page_, stack_size_, 1});
      ++guarded_count_;
      cache.stacks.push_back(Stack{base + page_, stack_size_, true, base + page_ + stack_size_});
      return;
    } else {
      carve_arena();
    }
  }
  // Warm stacks first (their top page is resident), then cold ones.
  std::size_t take = kCacheMax / 2;
  while (take > 0 && !free_.empty()) {
    cache.stacks.push_back(free_.back());
    free_.pop_back();
    --take;
  }
  while (take > 0 && !cold_.empty()) {
    cache.stacks.push_back(cold_.back());
    cold_.pop_back();
    --take;
  }
}

Stack StackPool::acquire(StackCache& cache) {
  if (cache.stacks.empty()) refill(cache);
  Stack s = cache.stacks.back();
  cache.stacks.pop_back();
#if GORO_TSAN
  // Go's race detector has the same limit; past it, TSan dies inside its fiber bookkeeping.
  if (in_use_.fetch_add(1, std::memory_order_relaxed) + 1 > tsan_limit_) {
    char msg[128];
    int n = std::snprintf(msg, sizeof msg,
                          "race: limit on %zu simultaneously alive goroutines is exceeded, dying\n",
                          tsan_limit_);
    std::fflush(nullptr);
    ssize_t ignored = write(STDERR_FILENO, msg, static_cast<std::size_t>(n));
    (void)ignored;
    _exit(2);
  }
#endif
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

void StackPool::put_back(Stack t) {
  // Warm: keep the top page (G, closure, canary); give back pages used deeper once the pool
  // is large.
  char* keep_from = t.lo + t.size - page_;
  if (free_.size() >= kScavengeAbove && t.low_water != nullptr && t.low_water < keep_from - page_) {
    char* from = t.lo + (static_cast<std::size_t>(t.low_water - t.lo) / page_) * page_;
    madvise(from, static_cast<std::size_t>(keep_from - from), MADV_DONTNEED);
    t.low_water = keep_from;
  }
  free_.push_back(t);
}

namespace {

// Returns [from, end) to the system. Under ASan also its shadow: acquire() unpoisons a
// whole stack, which writes (and so commits) size/8 bytes of shadow that would otherwise
// stay resident. Zero shadow means "addressable", which is what a pooled stack has.
void give_back(char* from, char* end) noexcept {
  madvise(from, static_cast<std::size_t>(end - from), MADV_DONTNEED);
#if GORO_ASAN
  std::size_t scale = 0;
  std::size_t offset = 0;
  __asan_get_shadow_mapping(&scale, &offset);
  const std::uintptr_t page = page_size();
  std::uintptr_t lo = (reinterpret_cast<std::uintptr_t>(from) >> scale) + offset;
  std::uintptr_t hi = (reinterpret_cast<std::uintptr_t>(end) >> scale) + offset;
  lo = (lo + page - 1) / page * page;  // whole shadow pages only: the edges are shared
  hi = hi / page * page;
  if (lo < hi) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
#endif
}

}  // namespace

void StackPool::cool(std::vector<Stack>& batch) noexcept {
  // Give every page back; an mprotect-scheme arena slot keeps its top page (its canary is
  // the word the goroutine in the slot above checks). Sorted by address, neighbours are
  // merged into one madvise: in the madvise_guard scheme that spans the guard between two
  // slots, which MADV_DONTNEED leaves in place. Each call costs a TLB shootdown on every
  // worker, so batching is what makes this cheap.
  std::sort(batch.begin(), batch.end(), [](const Stack& a, const Stack& b) { return a.lo < b.lo; });
  const std::size_t gap = guards_ == StackGuards::madvise_guard ? kGuardBytes : 0;
  char* run_from = nullptr;
  char* run_end = nullptr;
  for (Stack& t : batch) {
    char* top = t.lo + t.size;
    char* end = t.guarded ? top : top - page_;
    char* from = t.guarded ? t.lo : std::min(end, t.low_water != nullptr ? t.low_water : end);
    from = t.lo + (static_cast<std::size_t>(from - t.lo) / page_) * page_;
    t.low_water = end;
#if GORO_TSAN
    if (t.tsan_fiber != nullptr) {
      __tsan_destroy_fiber(t.tsan_fiber);  // several MiB of TSan state
      t.tsan_fiber = nullptr;
    }
#endif
    if (from >= end) continue;
    if (run_end != nullptr && t.guarded && from == run_end + gap) {
      run_end = end;
      continue;
    }
    if (run_end != nullptr) give_back(run_from, run_end);
    run_from = from;
    run_end = end;
  }
  if (run_end != nullptr) give_back(run_from, run_end);
}

void StackPool::release(StackCache& cache, Stack s) noexcept {
#if GORO_TSAN
  in_use_.fetch_sub(1, std::memory_order_relaxed);
#endif
  if (cache.stacks.size() < kCacheMax) {
    cache.stacks.push_back(s);
    return;
  }
  // Move half of the cache (and s) to the global pool. When the pool holds twice kWarmMax
  // warm stacks, the kWarmMax least recently pooled ones are given back to the system
  // (outside the lock; they are in no list meanwhile) and join the cold list.
  std::vector<Stack> batch;
  {
    std::size_t move = kCacheMax / 2;
    LockGuard guard(mu_);
    for (std::size_t i = 0; i < move; ++i) {
      put_back(cache.stacks.back());
      cache.stacks.pop_back();
    }
    put_back(s);
    if (free_.size() >= 2 * kWarmMax) {
      batch.assign(free_.begin(), free_.begin() + kWarmMax);
      free_.erase(free_.begin(), free_.begin() + kWarmMax);
    }
  }
  if (batch.empty()) return;
  cool(batch);
  LockGuard guard(mu_);
  cold_.insert(cold_.end(), batch.begin(), batch.end());
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

namespace goro {

const char* stack_guard_scheme() noexcept {
  return detail::stack_guards_name(detail::default_stack_guards());
}

}  // namespace goro
