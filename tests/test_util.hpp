// Helpers shared by goro's tests: sanitizer detection and scaled iteration counts.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>

#include "goro/goro.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GORO_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GORO_TEST_SANITIZED 1
#endif
#endif
#ifndef GORO_TEST_SANITIZED
#define GORO_TEST_SANITIZED 0
#endif
#if defined(__SANITIZE_THREAD__)
#define GORO_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TEST_TSAN 1
#endif
#endif
#ifndef GORO_TEST_TSAN
#define GORO_TEST_TSAN 0
#endif

namespace goro_test {

inline constexpr bool kSanitized = GORO_TEST_SANITIZED != 0;
// TSan gives every goroutine (fiber) its own multi-MiB thread state: keep live counts low.
inline constexpr bool kThreadSanitizer = GORO_TEST_TSAN != 0;

// Big loops run a tenth as many rounds under the (5-15x slower) sanitizers.
constexpr int scaled(int n) { return kSanitized ? (n / 10 > 0 ? n / 10 : 1) : n; }

inline goro::Clock::duration since(goro::Clock::time_point start) {
  return goro::Clock::now() - start;
}

// Polls pred (yielding between tries) until it holds or `limit` passes; returns the last
// value. For observing progress that has no channel to wait on (e.g. parked goroutines).
template <class Pred>
bool eventually(Pred pred, goro::Clock::duration limit = std::chrono::seconds(10)) {
  const auto deadline = goro::Clock::now() + limit;
  while (!pred()) {
    if (goro::Clock::now() > deadline) return pred();
    goro::yield();
  }
  return true;
}

// ---- child processes (for fatal paths that exit) ----

struct ChildResult {
  int status = 0;
  std::string err;  // everything the child wrote to stderr
};

// Forks; the child points stderr at a pipe, runs scenario and exits 0 if it returns (3 if
// it throws). The parent collects stderr and the exit status.
template <class F>
inline ChildResult run_in_child(F scenario) {
  int fds[2];
  if (::pipe(fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return {};
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed";
    return {};
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[1]);
    ::alarm(60);  // never outlive the test
    try {
      scenario();
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      r.err.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  while (::waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
  }
  return r;
}

inline std::string describe(const ChildResult& r) {
  std::string s;
  if (WIFEXITED(r.status)) {
    s = "exit status " + std::to_string(WEXITSTATUS(r.status));
  } else if (WIFSIGNALED(r.status)) {
    s = "killed by signal " + std::to_string(WTERMSIG(r.status));
  }
  return s + "; stderr:\n" + r.err;
}

inline bool exited_with(const ChildResult& r, int code) {
  return WIFEXITED(r.status) && WEXITSTATUS(r.status) == code;
}

}  // namespace goro_test
