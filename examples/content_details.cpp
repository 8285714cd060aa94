// content_details: mirrors the Go program that fetches the details of many content items
// concurrently and gathers them into one map guarded by a sync.Mutex:
//
//   var mu sync.Mutex
//   details := map[string]Details{}
//   for _, id := range ids {
//       wg.Add(1)
//       go func(id string) {
//           defer wg.Done()
//           d := fetchDetails(id)
//           mu.Lock()
//           details[id] = d
//           mu.Unlock()
//       }(id)
//   }
//   wg.Wait()
//
//   content_details               the map is guarded by a goro::Mutex
//   content_details --unguarded   the lock is left out: goroutines on different worker threads
//                                 insert into the std::map at the same time. That is a data race
//                                 (undefined behaviour: lost entries, a corrupt tree or a crash);
//                                 ThreadSanitizer reports it. Go's race detector reports the Go
//                                 version, and Go's runtime often dies with "concurrent map
//                                 writes".
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <goro/goro.hpp>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct ContentDetails {
  std::string title;
  int views;
};

constexpr int kItems = 200;
constexpr auto kFetchLatency = 5ms;  // every fetch takes as long: they all finish together

std::string content_id(int n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "content-%03d", n);
  return buf;
}

// Go: func fetchDetails(id string) Details
// The remote call (a sleep), then decoding its response: CPU work that goroutines on different
// worker threads do in parallel, right before they store the result.
ContentDetails fetch_details(const std::string& id) {
  goro::sleep(kFetchLatency);
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a over the "response"
  for (int round = 0; round < 2000; ++round) {
    for (char c : id) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ull;
    }
  }
  return {"Title of " + id, static_cast<int>(hash % 10000)};
}

}  // namespace

int main(int argc, char** argv) {
  bool guarded = true;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--unguarded") {
      guarded = false;
    } else {
      std::fprintf(stderr, "usage: %s [--unguarded]\n", argv[0]);
      return 64;
    }
  }

  return goro::run([guarded] {
    std::map<std::string, ContentDetails> details;
    goro::Mutex mu;
    goro::WaitGroup wg;
    for (int n = 1; n <= kItems; ++n) {
      wg.go([&, n] {
        const std::string id = content_id(n);
        ContentDetails d = fetch_details(id);
        if (guarded) {
          std::lock_guard lock(mu);
          details.insert_or_assign(id, std::move(d));
        } else {
          details.insert_or_assign(id, std::move(d));  // DATA RACE: no lock
        }
      });
    }
    wg.wait();

    for (const auto& [id, d] : details) {
      if (id > content_id(3)) break;
      std::printf("  %s: \"%s\", %d views\n", id.c_str(), d.title.c_str(), d.views);
    }
    std::printf("collected %zu of %d content details (%s)\n", details.size(), kItems,
                guarded ? "guarded by a goro::Mutex" : "UNGUARDED: data race");
    return details.size() == static_cast<std::size_t>(kItems) ? 0 : 1;
  });
}
