// goro testing helpers: assert that a test leaked no goroutine (Go's uber-go/goleak).
//
//   TEST(Server, ShutsDownCleanly) {
//     goro::run([] {
//       Server s;
//       s.start();
//       s.stop();
//       goro::testing::verify_none();  // throws, listing every goroutine still alive
//     });
//   }
//
// Goroutines that are still exiting get `timeout` to finish (the check yields meanwhile).
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>

namespace goro::testing {

// Thrown by verify_none; what() is "found unexpected goroutines:" and one dump line each.
struct LeakedGoroutines : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Waits until the calling goroutine is the only one alive (besides those in `ignore`, by
// id), yielding meanwhile, or throws LeakedGoroutines once `timeout` has passed. Throws
// std::logic_error outside goro::run.
void verify_none(std::chrono::nanoseconds timeout = std::chrono::seconds(1),
                 std::initializer_list<std::uint64_t> ignore = {});

}  // namespace goro::testing
