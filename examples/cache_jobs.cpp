// cache_jobs: mirrors the Go background job that keeps two caches fresh with two tickers in one
// select loop, stopped by a context:
//
//   ctx, cancel := context.WithTimeout(context.Background(), time.Second)
//   defer cancel()
//   fast := time.NewTicker(50 * time.Millisecond);  defer fast.Stop()
//   slow := time.NewTicker(300 * time.Millisecond); defer slow.Stop()
//   for {
//       select {
//       case <-ctx.Done(): return
//       case <-fast.C:     refreshUsers()
//       case <-slow.C:     refreshCatalog()
//       }
//   }
//
//   cache_jobs [--duration-ms N]   runs for N ms (default 1000) and prints the refresh counts
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <goro/goro.hpp>
#include <optional>
#include <string>
#include <string_view>

using namespace std::chrono_literals;

namespace {

struct Cache {
  std::string name;
  int refreshes = 0;
  goro::Clock::time_point refreshed_at{};

  void refresh(goro::Clock::time_point tick) {
    ++refreshes;  // a real job would reload the data here
    refreshed_at = tick;
  }
};

// Go: func startCacheJobs(ctx context.Context)
void run_cache_jobs(const goro::Context& ctx, Cache* fast, Cache* slow) {
  goro::Ticker fast_ticker(50ms);  // both tickers stop when they go out of scope
  goro::Ticker slow_ticker(300ms);
  for (bool running = true; running;) {
    goro::select(
        goro::on_recv(ctx.done(), [&] { running = false; }),
        goro::on_recv(fast_ticker.chan(),
                      [&](std::optional<goro::Clock::time_point> t) { fast->refresh(*t); }),
        goro::on_recv(slow_ticker.chan(),
                      [&](std::optional<goro::Clock::time_point> t) { slow->refresh(*t); }));
  }
}

std::string error_text(const std::exception_ptr& err) {
  if (!err) return "none";
  try {
    std::rethrow_exception(err);
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace

int main(int argc, char** argv) {
  long duration_ms = 1000;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--duration-ms" && i + 1 < argc) {
      duration_ms = std::strtol(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--duration-ms N]\n", argv[0]);
      return 64;
    }
  }

  return goro::run([duration_ms] {
    auto [ctx, cancel] =
        goro::with_timeout(goro::Context::background(), std::chrono::milliseconds(duration_ms));
    Cache users{"users"};
    Cache catalog{"catalog"};

    const auto start = goro::Clock::now();
    goro::WaitGroup wg;
    wg.go([&users, &catalog, ctx = ctx] { run_cache_jobs(ctx, &users, &catalog); });
    wg.wait();
    cancel();  // Go's defer cancel(): releases the context's timer (a no-op after the deadline)
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(goro::Clock::now() - start);

    std::printf("stopped after %lld ms: %s\n", static_cast<long long>(elapsed.count()),
                error_text(ctx.err()).c_str());
    std::printf("fast cache (%s, every 50 ms) refreshed %d times\n", users.name.c_str(),
                users.refreshes);
    std::printf("slow cache (%s, every 300 ms) refreshed %d times\n", catalog.name.c_str(),
                catalog.refreshes);
    return 0;
  });
}
