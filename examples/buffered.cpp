// buffered: mirrors the Go example about channel capacity:
//
//   ch := make(chan int)      // unbuffered: a send waits for a receiver
//   ch <- 1                   // no receiver will ever come:
//                             // fatal error: all goroutines are asleep - deadlock!
//
//   ch := make(chan int, 1)   // capacity 1: one send completes without a receiver
//   ch <- 1
//   fmt.Println(<-ch)         // 1
//
//   buffered               capacity 1: prints "received 1"
//   buffered --unbuffered  the send blocks forever; the runtime reports the deadlock (exit 2)
#include <cstdio>
#include <goro/goro.hpp>
#include <string_view>

int main(int argc, char** argv) {
  bool unbuffered = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--unbuffered") {
      unbuffered = true;
    } else {
      std::fprintf(stderr, "usage: %s [--unbuffered]\n", argv[0]);
      return 64;
    }
  }

  return goro::run([unbuffered] {
    goro::Chan<int> ch = unbuffered ? goro::Chan<int>() : goro::Chan<int>(1);
    std::printf("made a channel with cap %zu, len %zu\n", ch.capacity(), ch.size());
    std::printf("sending 1 with no receiver...\n");
    std::fflush(stdout);  // with --unbuffered the runtime ends the process in send()

    ch.send(1);
    std::printf("sent: len %zu of cap %zu\n", ch.size(), ch.capacity());
    // The buffer is full now: another send would block (here it would deadlock).
    std::printf("a second send would block: try_send(2) = %s\n", ch.try_send(2) ? "true" : "false");

    std::optional<int> v = ch.recv();
    std::printf("received %d\n", *v);
    return 0;
  });
}
