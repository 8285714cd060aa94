// fanout_users: mirrors the Go fan-out idiom with an anonymous goroutine per user:
//
//   var wg sync.WaitGroup
//   wg.Add(len(users))                 // once, before any goroutine starts
//   for i, u := range users {
//       go func(i int, u User) {
//           defer wg.Done()            // runs on every return path
//           outcomes[i] = notify(u)    // each goroutine writes its own slot: no lock needed
//       }(i, u)
//   }
//   wg.Wait()
//
// C++ has no defer; an RAII guard whose destructor calls done() plays its part.
#include <chrono>
#include <cstdio>
#include <goro/goro.hpp>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Go's defer: runs f when the scope ends, however it ends.
template <class F>
class Defer {
 public:
  explicit Defer(F f) : f_(std::move(f)) {}
  Defer(const Defer&) = delete;
  Defer& operator=(const Defer&) = delete;
  ~Defer() { f_(); }

 private:
  F f_;
};

struct User {
  std::string name;
  std::string email;
  bool active;
};

constexpr auto kSendLatency = 30ms;  // one simulated mail delivery

long long ms_since(goro::Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(goro::Clock::now() - start).count();
}

}  // namespace

int main() {
  return goro::run([] {
    const std::vector<User> users = {
        {"alice", "alice@example.com", true},  {"bob", "bob@example.com", true},
        {"carol", "carol@example.com", false}, {"dave", "dave@example.com", true},
        {"erin", "erin@example.com", true},    {"frank", "frank@example.com", true},
    };
    std::vector<std::string> outcomes(users.size());

    const auto start = goro::Clock::now();
    goro::WaitGroup wg;
    wg.add(static_cast<int>(users.size()));
    for (std::size_t i = 0; i < users.size(); ++i) {
      goro::go(
          [&wg, &outcomes](std::size_t i, User user) {
            Defer done([&wg] { wg.done(); });
            if (!user.active) {
              outcomes[i] = "skipped " + user.name + " (inactive)";
              return;  // the guard still calls done()
            }
            goro::sleep(kSendLatency);
            outcomes[i] = "welcome email sent to " + user.email;
          },
          i, users[i]);
    }
    wg.wait();
    const long long elapsed = ms_since(start);

    std::size_t notified = 0;
    for (const std::string& outcome : outcomes) {
      std::printf("  %s\n", outcome.c_str());
      if (outcome.rfind("welcome", 0) == 0) ++notified;
    }
    std::printf("notified %zu of %zu users in %lld ms (one at a time: %lld ms)\n", notified,
                users.size(), elapsed,
                static_cast<long long>(notified) *
                    std::chrono::duration_cast<std::chrono::milliseconds>(kSendLatency).count());
    return notified == 5 ? 0 : 1;
  });
}
