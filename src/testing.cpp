// goro: verify_none, the goroutine-leak check for tests (see goro/testing.hpp).
#include "goro/testing.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "goro/runtime.hpp"
#include "park.hpp"

namespace goro::testing {

namespace {

std::vector<GoroutineInfo> others(std::uint64_t self, std::initializer_list<std::uint64_t> ignore,
                                  bool with_sites) {
  std::vector<GoroutineInfo> found = goroutines(with_sites);
  std::erase_if(found, [&](const GoroutineInfo& g) {
    return g.id == self || std::find(ignore.begin(), ignore.end(), g.id) != ignore.end();
  });
  return found;
}

}  // namespace

void verify_none(std::chrono::nanoseconds timeout, std::initializer_list<std::uint64_t> ignore) {
  detail::require_goroutine("goro::testing::verify_none");
  const std::uint64_t self = goroutine_id();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!others(self, ignore, false).empty()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string text = "found unexpected goroutines:";
      for (const GoroutineInfo& g : others(self, ignore, true)) {
        text += "\ngoroutine " + std::to_string(g.id) + " [" + g.state + "]: created at " +
                g.created_at;
      }
      throw LeakedGoroutines(text);
    }
    yield();
  }
}

}  // namespace goro::testing
