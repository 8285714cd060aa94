// million: mirrors the Go demonstration that goroutines are cheap enough to start a million:
//
//   release := make(chan struct{})
//   for i := 0; i < n; i++ {
//       wg.Add(1)
//       go func() { defer wg.Done(); <-release }()   // all parked on one channel
//   }
//   close(release)                                  // wakes every one of them
//   wg.Wait()
//
// It prints how long the spawning and the release took and the resident memory per parked
// goroutine (the VmRSS growth from /proc/self/status divided by n).
//
//   million [--n N]   N goroutines (default 1000000)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <goro/goro.hpp>
#include <string_view>
#include <variant>

namespace {

// Resident set size of this process in KiB (VmRSS in /proc/self/status), or -1.
long rss_kib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  long kib = -1;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      kib = std::strtol(line + 6, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kib;
}

double ms_since(goro::Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(goro::Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  long n = 1'000'000;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--n" && i + 1 < argc) {
      n = std::strtol(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--n N]\n", argv[0]);
      return 64;
    }
  }
  if (n <= 0 || n > 100'000'000) {
    std::fprintf(stderr, "--n must be between 1 and 100000000\n");
    return 64;
  }

  return goro::run([n] {
    goro::Chan<std::monostate> release;  // never sent on: closing it wakes every receiver
    goro::WaitGroup started;             // counts goroutines that reached the receive
    goro::WaitGroup finished;
    const long rss_before = rss_kib();
    const auto start = goro::Clock::now();

    started.add(static_cast<int>(n));
    finished.add(static_cast<int>(n));
    for (long i = 0; i < n; ++i) {
      goro::go([&] {
        started.done();
        release.recv();  // parks until release is closed
        finished.done();
      });
    }
    started.wait();
    const double spawn_ms = ms_since(start);
    const long rss_after = rss_kib();
    const std::size_t live = goro::num_goroutines();

    std::printf("%ld goroutines started and parked on one channel in %.0f ms (%d worker threads)\n",
                n, spawn_ms, goro::procs());
    std::printf("live goroutines: %zu\n", live);
    if (rss_before >= 0 && rss_after >= 0) {
      const double delta_kib = static_cast<double>(rss_after - rss_before);
      std::printf("resident memory: %.1f MiB more, %.2f KiB per goroutine\n", delta_kib / 1024,
                  delta_kib / static_cast<double>(n));
    }

    const auto release_start = goro::Clock::now();
    release.close();
    finished.wait();
    std::printf("released %ld goroutines in %.0f ms\n", n, ms_since(release_start));
    return 0;
  });
}
