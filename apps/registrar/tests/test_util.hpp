// registrar tests: temp directories, file helpers, running goro code and the binary.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <goro/goro.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace registrar::testing {

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "registrar-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + path);
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs f as the main goroutine of a fresh runtime. An exception escaping f is rethrown as
// itself (not as the goro::Panic wrapping it); a deadlock throws goro::Deadlock.
template <class F>
auto in_goro(F&& f) {
  goro::Options opts;
  opts.on_fatal = goro::OnFatal::raise;
  try {
    return goro::run(std::forward<F>(f), opts);
  } catch (const goro::Panic& p) {
    std::rethrow_if_nested(p);
    throw;
  }
}

// One integer from SQL, through a connection of the test's own.
inline long long sql_int(const std::string& db, const std::string& sql) {
  sqlite3* conn = nullptr;
  if (sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(conn);
    throw std::runtime_error("cannot open " + db);
  }
  sqlite3_busy_timeout(conn, 5000);
  sqlite3_stmt* s = nullptr;
  long long v = -1;
  if (sqlite3_prepare_v2(conn, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW)
    v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(conn);
  if (v < 0) throw std::runtime_error("query failed: " + sql);
  return v;
}

struct ProcResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
};

// Starts the registrar binary with stdin from `stdin_path` ("" = /dev/null) and stdout/stderr
// into files of `dir`; returns the pid.
inline pid_t spawn_registrar(const std::vector<std::string>& args, const TempDir& dir,
                             const std::string& stdin_path = "") {
  std::string out = dir.file("proc.stdout"), err = dir.file("proc.stderr");
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int in = ::open(stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY);
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || o < 0 || e < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv;
    std::string bin = REGISTRAR_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// Like spawn_registrar, but stdout is a pipe: *stdout_fd is its read end (the caller closes it).
inline pid_t spawn_registrar_piped(const std::vector<std::string>& args, const TempDir& dir,
                                   int* stdout_fd) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::string err = dir.file("proc.stderr");
  std::filesystem::remove(dir.file("proc.stdout"));  // wait_registrar: no stale stdout
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || e < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(p[1], 1);
    ::dup2(e, 2);
    std::vector<char*> argv;
    std::string bin = REGISTRAR_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(p[1]);
  *stdout_fd = p[0];
  return pid;
}

// Reads from fd until `pred(text so far)` holds or EOF; returns what was read.
template <class Pred>
std::string read_until(int fd, Pred pred) {
  std::string text;
  char buf[1 << 16];
  while (!pred(text)) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

inline ProcResult wait_registrar(pid_t pid, const TempDir& dir, long* max_rss_kb = nullptr) {
  int st = 0;
  struct rusage ru {};
  while (::wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  if (max_rss_kb) *max_rss_kb = ru.ru_maxrss;
  ProcResult r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  if (std::filesystem::exists(dir.file("proc.stdout"))) r.out = read_file(dir.file("proc.stdout"));
  r.err = read_file(dir.file("proc.stderr"));
  return r;
}

inline ProcResult run_registrar(const std::vector<std::string>& args, const TempDir& dir,
                                const std::string& stdin_path = "") {
  return wait_registrar(spawn_registrar(args, dir, stdin_path), dir);
}

inline std::size_t count_lines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace registrar::testing
