// goro internal: the helper threads behind goro::blocking() — one pool per Runtime, stopped
// at the end of its run (blocking.cpp has the protocol).
//
// Invariants (under mu_): idle_ counts helpers waiting on cv_ (a notified helper that has
// not woken yet still counts); a call is in queue_ until one helper takes it; stopping_ is
// set only by stop(), which clears the queue (calls not yet started never start) and joins
// every helper (calls running are waited for). mu_ is a std::mutex, not a goro Lock: helpers
// sleep on cv_ under it, and it is never taken with a goro lock held.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace goro::detail {

struct G;
struct Runtime;

struct BlockingCall {
  void (*fn)(void*);
  void* arg;
  G* g;
  Runtime* rt;
  std::exception_ptr error;
  int err_no = 0;  // errno as fn left it on the helper thread
};

class BlockingPool {
 public:
  BlockingPool() = default;
  ~BlockingPool() { stop(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Hands call to a helper (starting one if none is idle, up to kMaxThreads; past that it
  // queues). The caller's goroutine is readied by the helper when fn returned.
  void submit(BlockingCall* call);
  // Drops the calls not started, waits for the running ones, joins every helper. The pool
  // can be used again afterwards.
  void stop() noexcept;

 private:
  static constexpr std::size_t kMaxThreads = 256;
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BlockingCall*> queue_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace goro::detail
