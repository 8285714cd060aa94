// Must not compile: a channel element whose move constructor may throw (checked by ctest,
// which expects the static_assert's message).
#include "goro/goro.hpp"

struct ThrowingMove {
  ThrowingMove() = default;
  ThrowingMove(ThrowingMove&&) noexcept(false) {}
};

int main() {
  goro::Chan<ThrowingMove> ch(1);
  return 0;
}
