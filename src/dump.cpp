// goro: the goroutine dump (Go's traceback of all goroutines, one line each):
//   goroutine 7 [chan receive, 3s]: created at main.cpp:42 in register_all
// The creation site is the program counter that called go(); it is symbolised with dladdr
// (function) and addr2line (function and file:line, where debug info exists). addr2line is
// spawned directly (posix_spawn, an argv array, no shell), once per module for all distinct
// sites, and read with a deadline, so a dump on the fatal path never hangs on it.
#include <cxxabi.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "goro/runtime.hpp"
#include "platform.hpp"
#include "scheduler.hpp"

#if GORO_TSAN
// In TSan's runtime, not in every compiler's sanitizer headers.
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

extern char** environ;

namespace goro::detail {

const char* wait_reason_text(WaitReason r) noexcept {
  switch (r) {
    case WaitReason::none:
      return "waiting";
    case WaitReason::chan_send:
      return "chan send";
    case WaitReason::chan_receive:
      return "chan receive";
    case WaitReason::chan_send_nil:
      return "chan send (nil chan)";
    case WaitReason::chan_receive_nil:
      return "chan receive (nil chan)";
    case WaitReason::select:
      return "select";
    case WaitReason::select_no_cases:
      return "select (no cases)";
    case WaitReason::waitgroup_wait:
      return "sync.WaitGroup.Wait";
    case WaitReason::mutex_lock:
      return "sync.Mutex.Lock";
    case WaitReason::rwmutex_rlock:
      return "sync.RWMutex.RLock";
    case WaitReason::rwmutex_lock:
      return "sync.RWMutex.Lock";
    case WaitReason::cond_wait:
      return "sync.Cond.Wait";
    case WaitReason::sleep:
      return "sleep";
    case WaitReason::io_wait:
      return "IO wait";
    case WaitReason::blocking_call:
      return "blocking call";
  }
  return "waiting";
}

namespace {

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                             std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

// Shortens "ns::f(int, std::string) const" to "ns::f" for the one-line dump.
std::string short_function(std::string name) {
  const std::string kConst = " const";
  if (name.size() > kConst.size() &&
      name.compare(name.size() - kConst.size(), kConst.size(), kConst) == 0) {
    name.resize(name.size() - kConst.size());
  }
  if (name.empty() || name.back() != ')') return name;
  int depth = 0;
  for (std::size_t i = name.size(); i-- > 0;) {
    if (name[i] == ')') ++depth;
    if (name[i] == '(' && --depth == 0) return name.substr(0, i);
  }
  return name;
}

// A fatal path must never hang on addr2line: a dump gives it this much time in all; sites
// not symbolised by then keep what dladdr found.
constexpr std::int64_t kSymboliseBudgetNs = 5'000'000'000;
constexpr std::size_t kMaxAddressesPerRun = 256;          // keeps argv small
constexpr std::size_t kMaxOutputBytes = 1024 * 1024;      // a bound on what we read
constexpr const char* kAddr2line = "/usr/bin/addr2line";  // absolute: no PATH search, no shell

void chomp(std::string& s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
}

// Waits for pid until deadline_ns, then kills it: never blocks past the deadline (but for the
// moment a SIGKILLed process takes to go).
void reap(pid_t pid, std::int64_t deadline_ns) {
  for (;;) {
    const pid_t r = waitpid(pid, nullptr, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;  // done, or reaped elsewhere (ECHILD)
    if (r == 0) {
      if (now_ns() >= deadline_ns) break;
      timespec pause{0, 1'000'000};
      nanosleep(&pause, nullptr);
    }
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// Runs args (args[0] an absolute path) with posix_spawn, no shell, stdin and stderr on
// /dev/null, and returns what it writes on stdout until it closes it or deadline_ns passes
// (then the child is killed and the output so far is returned).
std::string run_captured(const std::vector<std::string>& args, std::int64_t deadline_ns) {
  std::string out;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return out;
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  sigset_t pipe_default;
  sigemptyset(&pipe_default);
  sigaddset(&pipe_default, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);  // a worker may have signals blocked
  posix_spawnattr_setsigdefault(&attr, &pipe_default);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return out;
  }
  char buf[4096];
  for (;;) {
    const std::int64_t left_ns = deadline_ns - now_ns();
    if (left_ns <= 0) break;
    pollfd pfd{fds[0], POLLIN, 0};
    const int ready = poll(&pfd, 1, static_cast<int>((left_ns + 999'999) / 1'000'000));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;  // timed out, or poll failed
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // end of output
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > kMaxOutputBytes) break;
  }
  close(fds[0]);
  reap(pid, deadline_ns);
  return out;
}

// One creation site: dladdr's answer, completed by addr2line.
struct Site {
  std::string object;       // the module holding the pc, for addr2line
  std::uintptr_t offset{};  // the call instruction's offset within that module
  std::string function;
  std::string where;  // "file:line" where debug info exists
};

// Runs addr2line once for the offsets of many sites in one object (it prints two lines per
// address: the function, then file:line) and fills function and where as far as it knows them.
void addr2line(const std::string& object, const std::vector<Site*>& sites,
               std::int64_t deadline_ns) {
  std::vector<std::string> args = {kAddr2line, "-f", "-C", "-e", object};
  for (const Site* s : sites) {
    char hex[32];
    std::snprintf(hex, sizeof(hex), "0x%llx", static_cast<unsigned long long>(s->offset));
    args.emplace_back(hex);
  }
  const std::string out = run_captured(args, deadline_ns);
  std::size_t pos = 0;
  auto next_line = [&out, &pos](std::string* line) {
    const std::size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) return false;  // no (complete) line: cut by the deadline
    *line = out.substr(pos, nl - pos);
    pos = nl + 1;
    chomp(*line);
    return true;
  };
  for (Site* s : sites) {
    std::string fn;
    std::string loc;
    if (!next_line(&fn) || !next_line(&loc)) return;
    if (!fn.empty() && fn[0] != '?') s->function = short_function(fn);
    if (!loc.empty() && loc[0] != '?') {
      auto slash = loc.find_last_of('/');
      if (slash != std::string::npos) loc = loc.substr(slash + 1);
      auto paren = loc.find(" (");
      if (paren != std::string::npos) loc = loc.substr(0, paren);
      s->where = loc;
    }
  }
}

std::string executable_path() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<std::size_t>(n));
}

// What dladdr knows about pc, a return address (the call is the instruction before it).
// False when no loaded module holds it.
bool locate(const void* pc, Site* site) {
  auto addr = reinterpret_cast<std::uintptr_t>(pc) - 1;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(addr), &info) == 0) return false;
  site->function = info.dli_sname ? short_function(demangle(info.dli_sname)) : "?";
  site->object = info.dli_fname ? info.dli_fname : "";
  // The main executable may be named by a relative argv[0]; resolve it.
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&executable_path), &self) &&
      self.dli_fbase == info.dli_fbase) {
    site->object = executable_path();
  }
  site->offset = addr - reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  return true;
}

// Names every creation site as the dump prints it: "file:line in function" or "in function",
// the bare pc when no module holds it, "unknown" for a null pc. addr2line runs once per module (per
// kMaxAddressesPerRun sites), all within kSymboliseBudgetNs.
std::map<const void*, std::string> symbolise_all(const std::vector<const void*>& pcs) {
  std::map<const void*, std::string> names;
  std::map<const void*, Site> sites;
  for (const void* pc : pcs) {
    if (pc == nullptr) {
      names[pc] = "unknown";
      continue;
    }
    Site site;
    if (!locate(pc, &site)) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%p", pc);
      names[pc] = buf;
      continue;
    }
    sites.emplace(pc, std::move(site));
  }
  std::map<std::string, std::vector<Site*>> by_object;
  for (auto& [pc, site] : sites) {
    if (!site.object.empty()) by_object[site.object].push_back(&site);
  }
  if (!by_object.empty() && access(kAddr2line, X_OK) == 0) {
    const std::int64_t deadline_ns = now_ns() + kSymboliseBudgetNs;
    for (const auto& [object, list] : by_object) {
      for (std::size_t i = 0; i < list.size() && now_ns() < deadline_ns; i += kMaxAddressesPerRun) {
        const std::size_t end = std::min(list.size(), i + kMaxAddressesPerRun);
        addr2line(object, std::vector<Site*>(list.begin() + i, list.begin() + end), deadline_ns);
      }
    }
  }
  for (const auto& [pc, site] : sites) {
    names[pc] = site.where.empty() ? "in " + site.function : site.where + " in " + site.function;
  }
  return names;
}

}  // namespace

std::string symbolise(const void* pc) { return symbolise_all({pc})[pc]; }

// The creation sites of a dump's rows (goroutine 1's is "goro::run" and not looked up), with
// one addr2line run per module for all of them.
template <class Row>
std::map<const void*, std::string> creation_sites(const std::vector<Row>& rows) {
  std::vector<const void*> pcs;
  for (const Row& r : rows) {
    if (r.id != 1) pcs.push_back(r.pc);
  }
  std::sort(pcs.begin(), pcs.end());
  pcs.erase(std::unique(pcs.begin(), pcs.end()), pcs.end());
  return symbolise_all(pcs);
}

namespace {

std::string format_wait(std::int64_t since, std::int64_t now) {
  if (since == 0 || now <= since) return {};
  std::int64_t seconds = (now - since) / 1'000'000'000;
  if (seconds < 1) return {};
  if (seconds < 60) return ", " + std::to_string(seconds) + "s";
  return ", " + std::to_string(seconds / 60) + " minutes";
}

}  // namespace

// A snapshot of every live goroutine, by id. The slots are read while other workers may be
// constructing or freeing a G in them: every field read is atomic and a row is kept only if
// its slot says live, but a G's constructor initialises its atomics with plain stores, so
// TSan is told not to check this walk (a row may mix two goroutines of a reused slot; a
// dump is a diagnostic snapshot).
// A running goroutine's since is when sysmon first saw it running (it publishes that once
// the goroutine has kept its worker for 10 ms), matched by address against each worker's
// current goroutine; 0 when it switched since.
std::vector<GoroutineRow> snapshot_goroutines(Runtime* rt) {
  std::vector<GoroutineRow> rows;
  std::vector<std::pair<const G*, std::int64_t>> running;
  for (int i = 0, n = all_ps(rt); i < n; ++i) {
    const P* p = rt->ps[static_cast<std::size_t>(i)];
    const std::uint32_t s = p->switches.load(std::memory_order_relaxed);
    const G* g = p->current.load(std::memory_order_relaxed);
    if ((s & 1) != 0 && g != nullptr &&
        p->run_since_switches.load(std::memory_order_relaxed) == s) {
      running.emplace_back(g, p->run_since_ns.load(std::memory_order_relaxed));
    }
  }
#if GORO_TSAN
  __tsan_ignore_thread_begin();
#endif
  rt->stacks.for_each_slot([&rows, &running](char* lo, std::size_t size) {
    G* g = goroutine_in_slot(lo, size);
    if (g->live_magic.load(std::memory_order_acquire) != kLiveMagic) return;
    GoroutineRow r{g->id.load(std::memory_order_relaxed), g->status.load(std::memory_order_relaxed),
                   g->wait_reason.load(std::memory_order_relaxed),
                   g->wait_since_ns.load(std::memory_order_relaxed),
                   g->creator_pc.load(std::memory_order_relaxed)};
    if (r.status == GStatus::running) {
      r.since = 0;
      for (const auto& [rg, since] : running) {
        if (rg == g) r.since = since;
      }
    }
    if (r.status != GStatus::dead) rows.push_back(r);
  });
#if GORO_TSAN
  __tsan_ignore_thread_end();
#endif
  std::sort(rows.begin(), rows.end(),
            [](const GoroutineRow& a, const GoroutineRow& b) { return a.id < b.id; });
  return rows;
}

void write_dump(Runtime* rt, std::string& out) {
  if (rt == nullptr) return;
  const std::vector<GoroutineRow> rows = snapshot_goroutines(rt);
  const std::map<const void*, std::string> sites = creation_sites(rows);
  std::int64_t now = coarse_now_ns();
  G* self = current_g();
  for (const GoroutineRow& r : rows) {
    std::string state;
    switch (r.status) {
      case GStatus::running:
        state = "running" + format_wait(r.since, now);
        break;
      case GStatus::runnable:
        state = "runnable";
        break;
      case GStatus::waiting:
        state = std::string(wait_reason_text(r.reason)) + format_wait(r.since, now);
        break;
      case GStatus::dead:
        continue;
    }
    if (self != nullptr && self->id == r.id && r.status != GStatus::running) state = "running";
    const std::string site = r.id == 1 ? std::string("goro::run") : sites.at(r.pc);
    out += "goroutine " + std::to_string(r.id) + " [" + state + "]: created at " + site + "\n";
  }
}

}  // namespace goro::detail

namespace goro {

std::vector<GoroutineInfo> goroutines(bool with_creation_sites) {
  std::vector<GoroutineInfo> out;
  detail::ForeignScope foreign;  // a monitor thread may race the end of run()
  detail::Runtime* rt = detail::current_runtime();
  if (rt == nullptr) return out;
  const std::vector<detail::GoroutineRow> rows = detail::snapshot_goroutines(rt);
  const std::int64_t now = detail::coarse_now_ns();
  detail::G* self = detail::current_g();
  std::map<const void*, std::string> sites;
  if (with_creation_sites) sites = detail::creation_sites(rows);
  for (const detail::GoroutineRow& r : rows) {
    GoroutineInfo info;
    info.id = r.id;
    const bool me = self != nullptr && self->id.load(std::memory_order_relaxed) == r.id;
    if (me || r.status == detail::GStatus::running) {
      info.state = "running";
      if (r.status == detail::GStatus::running && r.since != 0 && now > r.since) {
        info.waited = std::chrono::nanoseconds(now - r.since);
      }
    } else if (r.status == detail::GStatus::runnable) {
      info.state = "runnable";
    } else {
      info.state = detail::wait_reason_text(r.reason);
      if (r.since != 0 && now > r.since) info.waited = std::chrono::nanoseconds(now - r.since);
    }
    if (with_creation_sites) info.created_at = r.id == 1 ? "goro::run" : sites.at(r.pc);
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace goro
