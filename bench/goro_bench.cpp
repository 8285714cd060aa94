// goro_bench: goro's benchmarks. bench/go/main.go is the Go twin: the same benchmarks with
// the same work, so that bench/run.sh can print goro/Go ratios.
//
//   goro_bench [--procs N] [--list] [name...]
//
// Prints one line per benchmark: name<TAB>ns_per_op<TAB>extra ("-" when unused). Each
// benchmark runs up to three times (fewer once a repetition took more than a second) and
// reports the median ns/op; extra comes from the first repetition.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <goro/goro.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// One repetition: elapsed wall time, number of operations, optional extra measurement.
struct Result {
  Clock::duration elapsed;
  std::int64_t ops;
  std::string extra = "-";
};

struct Benchmark {
  const char* name;
  Result (*fn)();
};

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("benchmark self-check failed: ") + what);
}

Result spawn_join() {
  constexpr int n = 1'000'000;
  auto start = Clock::now();
  goro::WaitGroup wg;
  for (int i = 0; i < n; ++i) {
    wg.add(1);
    goro::go([&wg] { wg.done(); });
  }
  wg.wait();
  return {Clock::now() - start, n};
}

// VmRSS from /proc/self/status, in bytes.
std::int64_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoll(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

Result park_1m() {
  constexpr int n = 1'000'000;
  std::int64_t before = resident_bytes();
  auto start = Clock::now();
  goro::Chan<std::monostate> gate;
  goro::WaitGroup parked, finished;
  parked.add(n);
  finished.add(n);
  for (int i = 0; i < n; ++i) {
    goro::go([&parked, &finished, gate]() mutable {
      parked.done();
      gate.recv();
      finished.done();
    });
  }
  parked.wait();
  std::int64_t per_goroutine = (resident_bytes() - before) / n;
  gate.close();
  finished.wait();
  return {Clock::now() - start, n, std::to_string(per_goroutine)};
}

Result pingpong() {
  constexpr std::int64_t n = 1'000'000;
  goro::Chan<std::int64_t> ping, pong;
  auto start = Clock::now();
  goro::go([ping, pong]() mutable {
    for (std::int64_t v : ping) pong.send(v + 1);
    pong.close();
  });
  std::int64_t v = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    ping.send(v);
    v = *pong.recv();
  }
  ping.close();
  pong.recv();
  auto elapsed = Clock::now() - start;
  check(v == n, "pingpong count");
  return {elapsed, n};
}

// Moves n items from one producer goroutine to one consumer goroutine.
Result spsc(std::int64_t n, std::size_t capacity) {
  goro::Chan<std::int64_t> ch(capacity);
  goro::Chan<std::int64_t> sums;
  auto start = Clock::now();
  goro::go([ch, n]() mutable {
    for (std::int64_t i = 0; i < n; ++i) ch.send(i);
    ch.close();
  });
  goro::go([ch, sums]() mutable {
    std::int64_t sum = 0;
    for (std::int64_t v : ch) sum += v;
    sums.send(sum);
  });
  std::int64_t sum = *sums.recv();
  auto elapsed = Clock::now() - start;
  check(sum == n * (n - 1) / 2, "spsc sum");
  return {elapsed, n};
}

Result unbuffered_spsc() { return spsc(2'000'000, 0); }
Result buffered_spsc() { return spsc(10'000'000, 1024); }

Result buffered_mpmc() {
  constexpr std::int64_t n = 10'000'000;
  constexpr int producers = 4, consumers = 4;
  goro::Chan<std::int64_t> ch(1024);
  goro::Chan<std::int64_t> sums(consumers);
  auto start = Clock::now();
  goro::WaitGroup wg;
  for (int p = 0; p < producers; ++p) {
    wg.go([ch, p]() mutable {
      for (std::int64_t i = p; i < n; i += producers) ch.send(i);
    });
  }
  goro::go([&wg, ch]() mutable {
    wg.wait();
    ch.close();
  });
  for (int c = 0; c < consumers; ++c) {
    goro::go([ch, sums]() mutable {
      std::int64_t sum = 0;
      for (std::int64_t v : ch) sum += v;
      sums.send(sum);
    });
  }
  std::int64_t sum = 0;
  for (int c = 0; c < consumers; ++c) sum += *sums.recv();
  auto elapsed = Clock::now() - start;
  check(sum == n * (n - 1) / 2, "mpmc sum");
  return {elapsed, n};
}

Result select2() {
  constexpr std::int64_t n = 5'000'000;
  goro::Chan<std::int64_t> a(1024), b(1024);
  auto start = Clock::now();
  auto produce = [](goro::SendChan<std::int64_t> ch, std::int64_t from) {
    for (std::int64_t i = from; i < n; i += 2) ch.send(i);
  };
  goro::go(produce, a, 0);
  goro::go(produce, b, 1);
  std::int64_t sum = 0;
  auto add = [&sum](std::optional<std::int64_t> v) { sum += *v; };
  for (std::int64_t got = 0; got < n; ++got) {
    goro::select(goro::on_recv(a, add), goro::on_recv(b, add));
  }
  auto elapsed = Clock::now() - start;
  check(sum == n * (n - 1) / 2, "select2 sum");
  return {elapsed, n};
}

Result mutex_contended() {
  constexpr std::int64_t n = 10'000'000;
  constexpr int workers = 8;
  goro::Mutex mu;
  std::int64_t counter = 0;
  auto start = Clock::now();
  goro::WaitGroup wg;
  for (int w = 0; w < workers; ++w) {
    wg.go([&mu, &counter] {
      for (std::int64_t i = 0; i < n / workers; ++i) {
        std::lock_guard lock(mu);
        ++counter;
      }
    });
  }
  wg.wait();
  auto elapsed = Clock::now() - start;
  check(counter == n, "mutex counter");
  return {elapsed, n};
}

Result waitgroup_fanout() {
  constexpr int rounds = 100, width = 10'000;
  auto start = Clock::now();
  goro::WaitGroup wg;
  for (int r = 0; r < rounds; ++r) {
    wg.add(width);
    for (int i = 0; i < width; ++i) goro::go([&wg] { wg.done(); });
    wg.wait();
  }
  return {Clock::now() - start, std::int64_t{rounds} * width};
}

// 10 000 goroutines wait on after(1ms) at once; repeated for `rounds` rounds.
Result timers_10k() {
  constexpr int rounds = 40, width = 10'000;
  auto start = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    goro::WaitGroup wg;
    for (int i = 0; i < width; ++i) wg.go([] { goro::after(1ms).recv(); });
    wg.wait();
  }
  return {Clock::now() - start, std::int64_t{rounds} * width};
}

Result yield() {
  constexpr std::int64_t n = 1'000'000;
  constexpr int workers = 2;
  auto start = Clock::now();
  goro::WaitGroup wg;
  for (int w = 0; w < workers; ++w) {
    wg.go([] {
      for (std::int64_t i = 0; i < n; ++i) goro::yield();
    });
  }
  wg.wait();
  return {Clock::now() - start, n * workers};
}

// ---- bulk_register: the registrar's fan-out/fan-in shape ----

struct Registration {
  int student;
  std::uint64_t ticket;
};

struct Outcome {
  Registration reg;
  const char* error;  // nullptr, or a static message (Go: a sentinel error)
};

struct Summary {
  int registered = 0;
  int failed = 0;
  std::uint64_t checksum = 0;
};

constexpr int kHashRounds = 90;

// ~200 ns of deterministic CPU work: a chain of dependent multiply-xorshift rounds (the
// same constants and count as the Go twin).
std::uint64_t register_work(int student) {
  std::uint64_t x = static_cast<std::uint64_t>(student) * 0x9E3779B97F4A7C15ull + 1;
  for (int i = 0; i < kHashRounds; ++i) {
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
  }
  return x;
}

Outcome register_student(int student) {
  std::uint64_t ticket = register_work(student);
  if (student % 10 == 9) return {{}, "course full"};
  return {{student, ticket}, nullptr};
}

Result bulk_register() {
  constexpr int students = 100'000;
  auto start = Clock::now();
  goro::Chan<Outcome> in;
  goro::Chan<Summary> out;
  goro::go([in, out]() mutable {
    Summary s;
    for (Outcome o : in) {
      if (o.error) {
        ++s.failed;
        continue;
      }
      ++s.registered;
      s.checksum ^= o.reg.ticket;
    }
    out.send(s);
  });
  goro::WaitGroup wg;
  for (int id = 0; id < students; ++id) {
    wg.go([in, id]() mutable { in.send(register_student(id)); });
  }
  wg.wait();
  in.close();
  Summary s = *out.recv();
  auto elapsed = Clock::now() - start;
  check(s.failed == students / 10 && s.registered == students - students / 10,
        "bulk_register counts");
  return {elapsed, students};
}

double cpu_seconds() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  auto secs = [](timeval t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

Result idle_cpu() {
  constexpr int sleepers = 8;
  static constexpr std::chrono::milliseconds period = 100ms, total = 2s;
  double cpu0 = cpu_seconds();
  auto start = Clock::now();
  goro::WaitGroup wg;
  for (int g = 0; g < sleepers; ++g) {
    wg.go([] {
      for (int i = 0; i < total / period; ++i) goro::sleep(period);
    });
  }
  wg.wait();
  auto elapsed = Clock::now() - start;
  char extra[32];
  std::snprintf(extra, sizeof extra, "%.4f", cpu_seconds() - cpu0);
  return {elapsed, 1, extra};
}

// ---- echo over loopback TCP: goroutine per connection, as a Go programmer writes it ----

// Accepts on a loopback port and echoes every connection on its own goroutine until the
// listener is closed (the returned handle; closing it ends the acceptor).
std::shared_ptr<goro::net::Listener> echo_server() {
  auto ln = std::make_shared<goro::net::Listener>(goro::net::listen("tcp", "127.0.0.1:0"));
  goro::go([ln] {
    for (;;) {
      goro::net::Conn c;
      try {
        c = ln->accept();
      } catch (const goro::net::Error&) {
        return;  // closed
      }
      goro::go([c = std::move(c)]() mutable {
        std::byte buf[4096];
        try {
          while (std::size_t n = c.read(buf)) c.write(std::span<const std::byte>(buf, n));
        } catch (const goro::net::Error&) {
        }
      });
    }
  });
  return ln;
}

// Sends a 64-byte message and reads the echo back, n times, on one connection.
void echo_round_trips(const std::string& addr, int n) {
  goro::net::Conn c = goro::net::dial("tcp", addr);
  std::byte msg[64] = {};
  std::byte back[64];
  for (int i = 0; i < n; ++i) {
    msg[0] = static_cast<std::byte>(i);
    c.write(std::span<const std::byte>(msg));
    check(goro::net::read_full(c, back) == sizeof back, "echo length");
    check(back[0] == static_cast<std::byte>(i), "echo content");
  }
}

Result echo_pingpong() {
  constexpr int n = 50'000;
  auto ln = echo_server();
  auto start = Clock::now();
  echo_round_trips(ln->addr(), n);
  auto elapsed = Clock::now() - start;
  ln->close();
  return {elapsed, n};
}

Result echo_1k() {
  constexpr int conns = 1000;
  constexpr int each = 100;
  auto ln = echo_server();
  const std::string addr = ln->addr();
  goro::WaitGroup wg;
  auto start = Clock::now();
  for (int i = 0; i < conns; ++i) wg.go([&addr] { echo_round_trips(addr, each); });
  wg.wait();
  auto elapsed = Clock::now() - start;
  ln->close();
  return {elapsed, conns * each};
}

// park_1m comes first so that its memory measurement starts from a process that has not
// created goroutines yet.
constexpr Benchmark kBenchmarks[] = {
    {"park_1m", park_1m},
    {"spawn_join", spawn_join},
    {"pingpong", pingpong},
    {"unbuffered_spsc", unbuffered_spsc},
    {"buffered_spsc", buffered_spsc},
    {"buffered_mpmc", buffered_mpmc},
    {"select2", select2},
    {"mutex_contended", mutex_contended},
    {"waitgroup_fanout", waitgroup_fanout},
    {"timers_10k", timers_10k},
    {"yield", yield},
    {"bulk_register", bulk_register},
    {"idle_cpu", idle_cpu},
    {"echo_pingpong", echo_pingpong},
    {"echo_1k", echo_1k},
};

// Up to three repetitions (stopping once one took more than a second); the median ns/op
// and the first repetition's extra.
std::pair<double, std::string> measure(Result (*fn)()) {
  std::vector<double> ns_per_op;
  std::string extra = "-";
  for (int rep = 0; rep < 3; ++rep) {
    Result r = fn();
    if (rep == 0) extra = r.extra;
    double ns = std::chrono::duration<double, std::nano>(r.elapsed).count();
    ns_per_op.push_back(ns / static_cast<double>(r.ops));
    if (r.elapsed > 1s) break;
  }
  std::sort(ns_per_op.begin(), ns_per_op.end());
  std::size_t k = ns_per_op.size();
  double median = k % 2 ? ns_per_op[k / 2] : (ns_per_op[k / 2 - 1] + ns_per_op[k / 2]) / 2;
  return {median, extra};
}

int usage() {
  std::fprintf(stderr, "usage: goro_bench [--procs N] [--list] [name...]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int procs = 0;  // 0: goro's default (GORO_MAXPROCS, else hardware threads)
  std::vector<std::string> filter;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    if (a == "--procs" && i + 1 < argc) {
      value = argv[++i];
    } else if (a.rfind("--procs=", 0) == 0) {
      value = a.substr(8);
    } else if (a == "--list") {
      for (const Benchmark& b : kBenchmarks) std::printf("%s\n", b.name);
      return 0;
    } else if (a.empty() || a[0] == '-') {
      return usage();
    } else {
      filter.push_back(a);
      continue;
    }
    char* end = nullptr;
    long p = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || p < 1 || p > 1024) {
      std::fprintf(stderr, "goro_bench: bad --procs '%s'\n", value.c_str());
      return 2;
    }
    procs = static_cast<int>(p);
  }
  auto selected = [&](const char* name) {
    return filter.empty() || std::find(filter.begin(), filter.end(), name) != filter.end();
  };
  for (const std::string& f : filter) {
    bool known = std::any_of(std::begin(kBenchmarks), std::end(kBenchmarks),
                             [&](const Benchmark& b) { return f == b.name; });
    if (!known) {
      std::fprintf(stderr, "goro_bench: unknown benchmark '%s' (see --list)\n", f.c_str());
      return 2;
    }
  }
  goro::run(
      [&] {
        for (const Benchmark& b : kBenchmarks) {
          if (!selected(b.name)) continue;
          auto [ns, extra] = measure(b.fn);
          std::printf("%s\t%.1f\t%s\n", b.name, ns, extra.c_str());
          std::fflush(stdout);
        }
      },
      goro::Options{.procs = procs});
  return 0;
}
