// goro internal: goroutine stacks.
//
// Every goroutine has its own stack (never copied, never shared: pointers into a stack stay
// valid, which the WaitGroup-on-the-caller's-stack pattern needs). Stacks are reserved with
// mmap(MAP_NORESERVE) and committed lazily by the kernel, so a parked goroutine costs the
// pages it touched (usually one).
//
// Guard schemes (StackGuards, chosen per pool from a probe made once per process):
//  - madvise_guard (Linux 6.13+, MADV_GUARD_INSTALL): every stack gets a kGuardBytes guard
//    region below it, installed inside one arena mapping (no new VMA per guard), so every
//    overflow faults and the SIGSEGV handler (on an alternate signal stack) prints "fatal
//    error: stack overflow in goroutine N" and exits 2.
//  - mprotect (older kernels, or GORO_STACK_GUARDS=mprotect): every mprotect'ed guard page
//    is its own kernel mapping and vm.max_map_count (65530 by default) caps them, so only
//    the first kGuardedBudget stacks are mapped one by one with a PROT_NONE page below.
//    Past the budget, stacks are carved from 64-stack arenas (one mapping each); the top
//    word of every slot (and of a pad below slot 0) holds a canary; an overflow of slot i
//    runs into the top of slot i-1, so every switch out of a goroutine checks the canary
//    just below its own stack and that its stack pointer is in bounds.
//
// Recycling: per-worker caches (no lock) in front of one global pool (under mu_). The pool
// keeps up to 2 * kWarmMax stacks warm (top page resident; pages used deeper are given back
// once the pool is large); when it reaches that, the kWarmMax least recently pooled stacks
// have all their pages given back with madvise(MADV_DONTNEED), in address order with
// neighbours merged into one call (all but the canary page for mprotect-scheme arena
// slots), and wait in the cold list. So after a burst of goroutines ends, the memory goes
// back to the system while run() lasts; address space is kept (reused warm first).
//
// Lifetimes: a Stack handed out by acquire belongs to its goroutine until release; the
// caches belong to their worker; free_/cold_/mappings_ are under mu_. Mappings are unmapped
// only by ~StackPool, after every worker has stopped (the dump and the end of run read G
// words of any slot, in use or not).
//
// Under TSan at most kTsanMaxGoroutines stacks may be in use at once (as Go's race
// detector): past that, "race: limit on 8128 simultaneously alive goroutines is exceeded,
// dying" and exit status 2, instead of TSan dying inside its fiber bookkeeping ("unable to
// unmap"). GORO_TSAN_GOROUTINE_LIMIT may lower the limit (tests).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "goro/detail/lock.hpp"

namespace goro::detail {

inline constexpr std::uint64_t kStackCanary = 0x60F0C0DE5AFE57ACull;
inline constexpr std::size_t kTsanMaxGoroutines = 8128;

enum class StackGuards : std::uint8_t { madvise_guard, mprotect };
// The scheme a new pool uses: the kernel probe (once per process), unless the environment
// variable GORO_STACK_GUARDS=mprotect forces the fallback.
StackGuards default_stack_guards() noexcept;
const char* stack_guards_name(StackGuards g) noexcept;

struct Stack {
  char* lo = nullptr;    // lowest usable byte
  std::size_t size = 0;  // usable bytes; the stack grows down from lo + size
  bool guarded = false;  // a guard sits right below lo (no canary)
  // The lowest stack pointer seen at a switch: how deep the stack was used (and so which
  // pages may be resident). Sampled, not exact: a deeper excursion between two switches
  // only means its pages stay resident while the stack is pooled.
  char* low_water = nullptr;
  // Under TSan: the fiber of the last goroutine that ran here, reused by the next one.
  void* tsan_fiber = nullptr;
};

struct StackCache {
  std::vector<Stack> stacks;
};

class StackPool {
 public:
  explicit StackPool(std::size_t stack_size);
  ~StackPool();  // unmaps every stack, in use or not
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  std::size_t stack_size() const noexcept { return stack_size_; }
  StackGuards guards() const noexcept { return guards_; }
  // Throws std::bad_alloc when the kernel refuses more address space.
  Stack acquire(StackCache& cache);
  void release(StackCache& cache, Stack s) noexcept;
  // Returns every stack of a worker's cache to the pool (a worker going away).
  void drain(StackCache& cache) noexcept;
  // Calls fn(lo, size) for every stack slot ever handed out or carved, in use or not.
  template <class F>
  void for_each_slot(F&& fn) {
    LockGuard guard(mu_);
    for (const Mapping& m : mappings_) {
      for (std::size_t i = 0; i < m.slots; ++i) fn(m.first_lo + i * m.stride, stack_size_);
    }
  }
  // Checks the arena canary below s; false means an overflow has been detected.
  static bool canary_intact(const Stack& s) noexcept;

 private:
  void refill(StackCache& cache);
  void carve_arena() GORO_REQUIRES(mu_);
  void carve_guarded_arena() GORO_REQUIRES(mu_);
  void put_back(Stack s) GORO_REQUIRES(mu_);
  void cool(std::vector<Stack>& batch) noexcept;

  static constexpr std::size_t kCacheMax = 64;
  static constexpr std::size_t kGuardedBudget = 16384;   // mprotect scheme
  static constexpr std::size_t kArenaSlots = 64;         // mprotect scheme
  static constexpr std::size_t kGuardArenaSlots = 256;   // madvise_guard scheme
  static constexpr std::size_t kGuardBytes = 64 * 1024;  // madvise_guard scheme
  static constexpr std::size_t kWarmMax = 1024;
  static constexpr std::size_t kScavengeAbove = 256;

  const std::size_t stack_size_;
  const std::size_t page_;
  const StackGuards guards_;
  const std::size_t tsan_limit_;  // used under TSan only
  Lock mu_{LockRank::stack_pool};
  std::vector<Stack> free_ GORO_GUARDED_BY(mu_);  // warm: top page resident
  std::vector<Stack> cold_ GORO_GUARDED_BY(mu_);  // pages given back
  std::size_t guarded_count_ GORO_GUARDED_BY(mu_) = 0;
  struct Mapping {
    void* addr;
    std::size_t len;
    char* first_lo;  // lo of its first slot
    std::size_t stride;
    std::size_t slots;
  };
  std::vector<Mapping> mappings_ GORO_GUARDED_BY(mu_);
  std::atomic<std::size_t> in_use_{0};  // counted under TSan only (the goroutine limit)
};

// Installs the SIGSEGV handler (once per process) and an alternate signal stack for the
// calling thread; returns the sigaltstack memory to free with remove_overflow_handler.
void* install_overflow_handler() noexcept;
void remove_overflow_handler(void* altstack) noexcept;
[[noreturn]] void report_stack_overflow(std::uint64_t goroutine_id) noexcept;

}  // namespace goro::detail
