// echo_server: Go's classic TCP echo server, a goroutine per connection:
//
//   ln, _ := net.Listen("tcp", addr)
//   for {
//     c, err := ln.Accept()
//     if err != nil { return }                      // the listener was closed
//     go func() {
//       defer c.Close()
//       for {
//         c.SetReadDeadline(time.Now().Add(idle))   // drop clients that say nothing
//         n, err := c.Read(buf)
//         if err != nil { return }                  // io.EOF or a timeout
//         c.Write(buf[:n])
//       }
//     }()
//   }
//
//   echo_server                           self-check over loopback: a server on 127.0.0.1:0,
//                                         50 clients that each echo 3 lines, one idle client
//                                         that the server drops after its read deadline
//   echo_server --listen ADDR [--idle-ms N]   serve ADDR until killed (try: nc localhost PORT)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <goro/goro.hpp>
#include <string>
#include <string_view>

using namespace std::chrono_literals;
namespace net = goro::net;

namespace {

struct Stats {
  std::atomic<int> served{0};
  std::atomic<int> idle_dropped{0};
};

void handle(net::Conn c, goro::Clock::duration idle, Stats& stats) {
  std::byte buf[4096];
  try {
    for (;;) {
      c.set_read_deadline(goro::Clock::now() + idle);
      const std::size_t n = c.read(buf);
      if (n == 0) break;  // the client closed its end
      c.write(std::span(buf, n));
    }
  } catch (const net::Timeout&) {
    stats.idle_dropped.fetch_add(1);
  } catch (const net::Error& e) {
    std::fprintf(stderr, "connection from %s: %s\n", c.remote_addr().c_str(), e.what());
  }
  stats.served.fetch_add(1);
}  // c's destructor closes the connection

// Accepts until the listener is closed; each connection gets its own goroutine.
void serve(net::Listener& ln, goro::Clock::duration idle, Stats& stats, goro::WaitGroup& wg) {
  for (;;) {
    net::Conn c;
    try {
      c = ln.accept();
    } catch (const net::Closed&) {
      return;
    }
    wg.go([c = std::move(c), idle, &stats]() mutable { handle(std::move(c), idle, stats); });
  }
}

constexpr int kClients = 50;
constexpr int kLines = 3;
constexpr goro::Clock::duration kIdle = 200ms;

int self_check() {
  return goro::run([] {
    net::Listener ln = net::listen("tcp", "127.0.0.1:0");
    std::printf("echo server listening on %s\n", ln.addr().c_str());
    Stats stats;
    goro::WaitGroup handlers;
    goro::WaitGroup server;
    server.go([&] { serve(ln, kIdle, stats, handlers); });

    std::atomic<int> echoed{0};
    goro::WaitGroup clients;
    for (int i = 0; i < kClients; ++i) {
      clients.go([&, i] {
        net::Conn c = net::dial("tcp", ln.addr());
        for (int line = 0; line < kLines; ++line) {
          const std::string msg =
              "client " + std::to_string(i) + " line " + std::to_string(line) + "\n";
          c.write(msg);
          std::string back(msg.size(), '\0');
          net::read_full(c, std::as_writable_bytes(std::span(back)));
          if (back == msg) echoed.fetch_add(1);
        }
      });
    }
    clients.wait();
    std::printf("%d clients: %d of %d lines echoed\n", kClients, echoed.load(), kClients * kLines);

    // A client that says nothing: the server's read deadline drops it, and this read sees
    // the end of the stream.
    net::Conn quiet = net::dial("tcp", ln.addr());
    const auto start = goro::Clock::now();
    std::byte b[1];
    const std::size_t n = quiet.read(b);
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(goro::Clock::now() - start);
    std::printf("idle client: read returned %zu (end of stream) after %s\n", n,
                waited >= kIdle ? ">= 200 ms" : "less than 200 ms (BUG)");

    ln.close();  // serve() sees Closed and returns
    server.wait();
    handlers.wait();
    std::printf("server stopped: %d connections served, %d dropped as idle\n", stats.served.load(),
                stats.idle_dropped.load());
    return echoed.load() == kClients * kLines && stats.idle_dropped.load() == 1 ? 0 : 1;
  });
}

int serve_forever(std::string_view addr, goro::Clock::duration idle) {
  return goro::run([addr, idle] {
    net::Listener ln = net::listen("tcp", addr);
    std::printf("echo server listening on %s\n", ln.addr().c_str());
    std::fflush(stdout);
    Stats stats;
    goro::WaitGroup handlers;
    serve(ln, idle, stats, handlers);
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view listen_addr;
  long idle_ms = 30'000;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      listen_addr = argv[++i];
    } else if (arg == "--idle-ms" && i + 1 < argc) {
      idle_ms = std::strtol(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--listen ADDR [--idle-ms N]]\n", argv[0]);
      return 64;
    }
  }
  if (listen_addr.empty()) return self_check();
  return serve_forever(listen_addr, std::chrono::milliseconds(idle_ms));
}
