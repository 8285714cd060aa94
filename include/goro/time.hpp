// goro time: Go's time.Sleep, time.After, Timer and Ticker, on the scheduler's timer heap.
//
//   goro::sleep(10ms);                                   // parks this goroutine only
//   goro::select(goro::on_recv(results, handle),
//                goro::on_recv(goro::after(1s), [&] { timed_out = true; }));
//   goro::Ticker tick(50ms);
//   for (int i = 0; i < 3; ++i) tick.chan().recv();     // three ticks
//   tick.stop();
//
// Timer and Ticker channels hold one value; ticks the receiver is not ready for are dropped.
// Timer::stop/reset return what Go's do. A Timer that is destroyed still fires into its
// channel (as Go's does); a Ticker is stopped when it is destroyed.
#pragma once

#include <chrono>

#include "goro/chan.hpp"

namespace goro {

using Clock = std::chrono::steady_clock;

namespace detail {
struct TimerNode;  // src/timer.hpp
TimerNode* timer_new(const Chan<Clock::time_point>& ch, Clock::duration first,
                     Clock::duration period);
void timer_release(TimerNode* t) noexcept;
bool timer_stop(TimerNode* t) noexcept;
bool timer_reset(TimerNode* t, Clock::duration first, Clock::duration period);
}  // namespace detail

// time.Sleep: parks the calling goroutine for d; d <= 0 returns at once.
void sleep(Clock::duration d);
// time.After: a channel that receives the time once d has passed.
RecvChan<Clock::time_point> after(Clock::duration d);

class Timer {
 public:
  explicit Timer(Clock::duration d);
  ~Timer();
  Timer(Timer&& o) noexcept;
  Timer& operator=(Timer&& o) noexcept;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  RecvChan<Clock::time_point> chan() const { return ch_; }
  // true if this call stopped the timer; false if it had fired or was stopped already.
  bool stop();
  // Re-arms the timer; true if it had been active.
  bool reset(Clock::duration d);

 private:
  Chan<Clock::time_point> ch_;
  detail::TimerNode* node_;
};

class Ticker {
 public:
  // Throws std::invalid_argument("non-positive interval for Ticker") for period <= 0.
  explicit Ticker(Clock::duration period);
  ~Ticker();
  Ticker(Ticker&& o) noexcept;
  Ticker& operator=(Ticker&& o) noexcept;
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

  RecvChan<Clock::time_point> chan() const { return ch_; }
  void stop();
  void reset(Clock::duration period);

 private:
  Chan<Clock::time_point> ch_;
  detail::TimerNode* node_;
};

}  // namespace goro
