// goro internal: goroutine stacks.
//
// Every goroutine has its own stack (never copied, never shared: pointers into a stack stay
// valid, which the WaitGroup-on-the-caller's-stack pattern needs). Stacks are reserved with
// mmap(MAP_NORESERVE) and committed lazily by the kernel, so a parked goroutine costs the
// pages it touched (usually one).
//
// Two kinds, because every guard page is a separate kernel mapping and vm.max_map_count
// (65530 by default) caps them:
//  - guarded: the first kGuardedBudget stacks each get their own mapping with a PROT_NONE
//    guard page below; an overflow faults there and the SIGSEGV handler (on an alternate
//    signal stack) prints "fatal error: stack overflow in goroutine N" and exits 2.
//  - arena: past the budget, stacks are carved from 64-stack arenas (one mapping each).
//    The top word of every slot (and of a pad below slot 0) holds a canary; an overflow of
//    slot i runs into the top of slot i-1, so every switch out of a goroutine checks the
//    canary just below its own stack and that its stack pointer is in bounds.
//
// Recycling: per-worker caches (no lock) in front of one global pool (under pool lock).
// Stacks that enter the global pool while it is large, and that were used deeper than their
// top pages, have those pages given back with madvise(MADV_DONTNEED). Most goroutines only
// touch the top page, so most releases cost no system call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "goro/detail/lock.hpp"

namespace goro::detail {

inline constexpr std::uint64_t kStackCanary = 0x60F0C0DE5AFE57ACull;

struct Stack {
  char* lo = nullptr;    // lowest usable byte
  std::size_t size = 0;  // usable bytes; the stack grows down from lo + size
  bool guarded = false;  // a PROT_NONE page sits right below lo
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
      std::size_t slots = (m.len - page_) / stack_size_;
      for (std::size_t i = 0; i < slots; ++i)
        fn(static_cast<char*>(m.addr) + page_ + i * stack_size_, stack_size_);
    }
  }
  // Checks the arena canary below s; false means an overflow has been detected.
  static bool canary_intact(const Stack& s) noexcept;

 private:
  void refill(StackCache& cache);
  void carve_arena() GORO_REQUIRES(mu_);

  static constexpr std::size_t kCacheMax = 64;
  static constexpr std::size_t kGuardedBudget = 16384;
  static constexpr std::size_t kArenaSlots = 64;
  static constexpr std::size_t kScavengeAbove = 1024;

  const std::size_t stack_size_;
  const std::size_t page_;
  Lock mu_;
  std::vector<Stack> free_ GORO_GUARDED_BY(mu_);
  std::size_t guarded_count_ GORO_GUARDED_BY(mu_) = 0;
  struct Mapping {
    void* addr;
    std::size_t len;
  };
  std::vector<Mapping> mappings_ GORO_GUARDED_BY(mu_);
};

// Installs the SIGSEGV handler (once per process) and an alternate signal stack for the
// calling thread; returns the sigaltstack memory to free with remove_overflow_handler.
void* install_overflow_handler() noexcept;
void remove_overflow_handler(void* altstack) noexcept;
[[noreturn]] void report_stack_overflow(std::uint64_t goroutine_id) noexcept;

}  // namespace goro::detail
