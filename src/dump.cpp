// goro: the goroutine dump (Go's traceback of all goroutines, one line each):
//   goroutine 7 [chan receive, 3s]: created at main.cpp:42 in register_all
// The creation site is the program counter that called go(); it is symbolised with dladdr
// (function) and addr2line (file:line, where debug info exists), once per distinct site.
#include <cxxabi.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "goro/runtime.hpp"
#include "scheduler.hpp"

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

// Runs addr2line on one address; fills function and "file:line" where it knows them.
void addr2line(const std::string& object, std::uintptr_t offset, std::string* function,
               std::string* where) {
  if (access("/usr/bin/addr2line", X_OK) != 0) return;
  std::string cmd = "/usr/bin/addr2line -f -C -e '" + object + "' 0x";
  char hex[32];
  std::snprintf(hex, sizeof(hex), "%llx", static_cast<unsigned long long>(offset));
  cmd += hex;
  cmd += " 2>/dev/null";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return;
  char line[4096];
  std::string fn;
  std::string loc;
  if (std::fgets(line, sizeof(line), f)) fn = line;
  if (std::fgets(line, sizeof(line), f)) loc = line;
  pclose(f);
  auto chomp = [](std::string& s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  };
  chomp(fn);
  chomp(loc);
  if (!fn.empty() && fn[0] != '?') *function = short_function(fn);
  if (!loc.empty() && loc[0] != '?') {
    auto slash = loc.find_last_of('/');
    if (slash != std::string::npos) loc = loc.substr(slash + 1);
    auto paren = loc.find(" (");
    if (paren != std::string::npos) loc = loc.substr(0, paren);
    *where = loc;
  }
}

std::string executable_path() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace

std::string symbolise(const void* pc) {
  if (pc == nullptr) return "unknown";
  // pc is a return address: the call is the instruction before it.
  auto addr = reinterpret_cast<std::uintptr_t>(pc) - 1;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(addr), &info) == 0) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%p", pc);
    return buf;
  }
  std::string function = info.dli_sname ? short_function(demangle(info.dli_sname)) : "?";
  std::string object = info.dli_fname ? info.dli_fname : "";
  // The main executable may be named by a relative argv[0]; resolve it.
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&executable_path), &self) &&
      self.dli_fbase == info.dli_fbase) {
    object = executable_path();
  }
  std::string where;
  if (!object.empty()) {
    addr2line(object, addr - reinterpret_cast<std::uintptr_t>(info.dli_fbase), &function, &where);
  }
  if (where.empty()) return "in " + function;
  return where + " in " + function;
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

void write_dump(Runtime* rt, std::string& out) {
  if (rt == nullptr) return;
  struct Row {
    std::uint64_t id;
    GStatus status;
    WaitReason reason;
    std::int64_t since;
    const void* pc;
  };
  std::vector<Row> rows;
  rt->stacks.for_each_slot([&rows](char* lo, std::size_t size) {
    G* g = goroutine_in_slot(lo, size);
    if (g->live_magic.load(std::memory_order_acquire) != kLiveMagic) return;
    Row r{g->id.load(std::memory_order_relaxed), g->status.load(std::memory_order_relaxed),
          g->wait_reason.load(std::memory_order_relaxed),
          g->wait_since_ns.load(std::memory_order_relaxed),
          g->creator_pc.load(std::memory_order_relaxed)};
    if (r.status != GStatus::dead) rows.push_back(r);
  });
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.id < b.id; });
  std::map<const void*, std::string> sites;
  std::int64_t now = coarse_now_ns();
  G* self = current_g();
  for (const Row& r : rows) {
    std::string state;
    switch (r.status) {
      case GStatus::running:
        state = "running";
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
    if (self != nullptr && self->id == r.id) state = "running";
    auto it = sites.find(r.pc);
    if (it == sites.end())
      it = sites.emplace(r.pc, r.id == 1 ? std::string("goro::run") : symbolise(r.pc)).first;
    out +=
        "goroutine " + std::to_string(r.id) + " [" + state + "]: created at " + it->second + "\n";
  }
}

}  // namespace goro::detail

namespace goro {

std::vector<GoroutineInfo> goroutines(bool with_creation_sites) {
  std::vector<GoroutineInfo> out;
  detail::Runtime* rt = detail::current_runtime();
  if (rt == nullptr) return out;
  struct Row {
    std::uint64_t id;
    detail::GStatus status;
    detail::WaitReason reason;
    std::int64_t since;
    const void* pc;
  };
  std::vector<Row> rows;
  rt->stacks.for_each_slot([&rows](char* lo, std::size_t size) {
    detail::G* g = detail::goroutine_in_slot(lo, size);
    if (g->live_magic.load(std::memory_order_acquire) != detail::kLiveMagic) return;
    Row r{g->id.load(std::memory_order_relaxed), g->status.load(std::memory_order_relaxed),
          g->wait_reason.load(std::memory_order_relaxed),
          g->wait_since_ns.load(std::memory_order_relaxed),
          g->creator_pc.load(std::memory_order_relaxed)};
    if (r.status != detail::GStatus::dead) rows.push_back(r);
  });
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.id < b.id; });
  const std::int64_t now = detail::coarse_now_ns();
  detail::G* self = detail::current_g();
  std::map<const void*, std::string> sites;
  for (const Row& r : rows) {
    GoroutineInfo info;
    info.id = r.id;
    const bool me = self != nullptr && self->id.load(std::memory_order_relaxed) == r.id;
    if (me || r.status == detail::GStatus::running) {
      info.state = "running";
    } else if (r.status == detail::GStatus::runnable) {
      info.state = "runnable";
    } else {
      info.state = detail::wait_reason_text(r.reason);
      if (r.since != 0 && now > r.since) info.waited = std::chrono::nanoseconds(now - r.since);
    }
    if (with_creation_sites) {
      auto it = sites.find(r.pc);
      if (it == sites.end()) {
        it = sites.emplace(r.pc, r.id == 1 ? std::string("goro::run") : detail::symbolise(r.pc))
                 .first;
      }
      info.created_at = it->second;
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace goro
