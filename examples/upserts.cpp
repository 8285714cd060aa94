// upserts: mirrors the Go walkthrough of "just add go": a user is written to the database and
// upserted to two stores, a cache and a search index (100 ms, 10 ms and 5 ms of simulated
// latency: the database is slow enough that its loss below is certain, not a race).
// Three versions, each timed:
//
//   1. sequential: 100 + 10 + 5 = 115 ms.
//   2. go without waiting:
//          go upsertDatabase(u)   // 100 ms
//          go upsertSearch(u)     //  5 ms
//          upsertCache(u)         // 10 ms, then main returns
//      main returns after ~10 ms: the search upsert has printed, the database upsert never does.
//      As in Go, the program ends with its main goroutine: goro::run returns when main returns
//      and goroutines still alive then are never resumed.
//   3. go with a sync.WaitGroup: all three at once, wait for them: ~100 ms (the slowest).
//
// Each version runs in its own goro::run (run may be called again after it returns).
#include <chrono>
#include <cstdio>
#include <goro/goro.hpp>
#include <string>

using namespace std::chrono_literals;

namespace {

struct User {
  int id;
  std::string name;
};

constexpr auto kDatabaseLatency = 100ms;
constexpr auto kCacheLatency = 10ms;
constexpr auto kSearchLatency = 5ms;

long long ms_since(goro::Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(goro::Clock::now() - start).count();
}

// Go: func upsert(store string, latency time.Duration, u User)
void upsert(const char* version, const char* store, goro::Clock::duration latency,
            const User& user) {
  goro::sleep(latency);
  std::printf("  [%s] upserted user %d (%s) into %s\n", version, user.id, user.name.c_str(), store);
}

void sequential(const User& user) {
  upsert("sequential", "database", kDatabaseLatency, user);
  upsert("sequential", "cache", kCacheLatency, user);
  upsert("sequential", "search", kSearchLatency, user);
}

void go_without_waiting(const User& user) {
  goro::go(upsert, "go, no wait", "database", kDatabaseLatency, user);  // never finishes
  goro::go(upsert, "go, no wait", "search", kSearchLatency, user);
  upsert("go, no wait", "cache", kCacheLatency, user);
}  // main returns here: nothing waits for the database upsert

void go_with_wait_group(const User& user) {
  goro::WaitGroup wg;
  wg.go([&user] { upsert("waitgroup", "database", kDatabaseLatency, user); });
  wg.go([&user] { upsert("waitgroup", "cache", kCacheLatency, user); });
  wg.go([&user] { upsert("waitgroup", "search", kSearchLatency, user); });
  wg.wait();
}

// Runs version(user) as the main goroutine of a fresh goro::run and reports its time.
void timed(const char* title, void (*version)(const User&), const User& user) {
  std::printf("%s:\n", title);
  long long elapsed = goro::run([&] {
    const auto start = goro::Clock::now();
    version(user);
    return ms_since(start);
  });
  std::printf("%s took %lld ms\n", title, elapsed);
}

}  // namespace

int main() {
  const User user{42, "gopher"};
  timed("sequential", sequential, user);
  timed("go without waiting", go_without_waiting, user);
  std::printf("  (goro::run returned with main: the 20 ms database upsert never printed)\n");
  timed("go with a WaitGroup", go_with_wait_group, user);
  return 0;
}
