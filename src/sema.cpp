// goro: the address-keyed wait table (invariants and lifetimes in sema.hpp).
#include "sema.hpp"

#include <bit>
#include <cstddef>

namespace goro::detail {

namespace {

constexpr std::size_t kBuckets = 1024;  // power of two; 64 KiB, cache-line padded
SemaBucket g_table[kBuckets];

bool matches(const SemaWaiter* w, const void* key, SemaKind kind) noexcept {
  return w->key == key && (kind == SemaKind::any || w->kind == kind);
}

}  // namespace

static_assert((kBuckets & (kBuckets - 1)) == 0);

SemaBucket& sema_bucket(const void* key) noexcept {
  auto a = reinterpret_cast<std::uintptr_t>(key) >> 3;
  return g_table[(a * 0x9E3779B97F4A7C15ull) >> (64 - std::countr_zero(kBuckets))];
}

SemaWaiter* SemaBucket::first(const void* key, SemaKind kind) {
  for (SemaWaiter* w = queue.head; w != nullptr; w = w->next) {
    if (matches(w, key, kind)) return w;
  }
  return nullptr;
}

SemaWaiter* SemaBucket::next_of(SemaWaiter* after, const void* key, SemaKind kind) {
  for (SemaWaiter* w = after->next; w != nullptr; w = w->next) {
    if (matches(w, key, kind)) return w;
  }
  return nullptr;
}

void sema_park(WaitReason reason, SemaBucket& b) { park_unlock(reason, b.mu); }

void sema_clear_all() noexcept GORO_NO_TSA {
  for (SemaBucket& b : g_table) {
    LockGuard guard(b.mu);
    b.queue.head = b.queue.tail = nullptr;  // the records are on abandoned stacks: untouched
  }
}

}  // namespace goro::detail
