// goro: Go's concurrency model in C++20. The one header to include.
//
//   #include <goro/goro.hpp>
//   using namespace std::chrono_literals;
//
//   int main() {
//     goro::run([] {
//       goro::WaitGroup wg;
//       goro::Chan<int> squares(10);
//       for (int i = 0; i < 10; ++i) wg.go([=] { squares.send(i * i); });
//       wg.wait();
//       squares.close();
//       int sum = 0;
//       for (int v : squares) sum += v;
//       std::printf("%d\n", sum);  // 285
//     });
//   }
#pragma once

#include "goro/chan.hpp"
#include "goro/context.hpp"
#include "goro/net.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "goro/stack.hpp"
#include "goro/sync.hpp"
#include "goro/time.hpp"
