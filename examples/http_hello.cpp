// http_hello: Go's net/http hello-world server with graceful shutdown:
//
//   mux := http.NewServeMux()
//   mux.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
//       fmt.Fprintf(w, "hello, %s\n", r.PathValue("name"))
//   })
//   srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
//   go func() { <-stop; srv.Shutdown(ctx) }()
//   if err := srv.ListenAndServe(); err != http.ErrServerClosed { log.Fatal(err) }
//
//   http_hello [--addr 127.0.0.1:8080]          serves until GET /quit (then shuts down)
//   http_hello --addr 127.0.0.1:0 --self-test   serves on a free port, requests /hello/gopher
//                                               over loopback with goro::net, shuts down
#include <cstdio>
#include <goro/goro.hpp>
#include <goro/http.hpp>
#include <string>
#include <string_view>

using namespace std::chrono_literals;
namespace http = goro::http;
namespace net = goro::net;

namespace {

// A one-request HTTP/1.1 client: "Connection: close" lets it read the response to the end.
std::string fetch(const std::string& addr, std::string_view path) {
  net::Conn c = net::dial_timeout("tcp", addr, 5s);
  c.set_deadline(goro::Clock::now() + 5s);
  c.write("GET " + std::string(path) + " HTTP/1.1\r\nHost: " + addr +
          "\r\nConnection: close\r\n\r\n");
  std::string resp;
  char buf[4096];
  while (std::size_t n = c.read(buf, sizeof buf)) resp.append(buf, n);
  return resp;
}

}  // namespace

int main(int argc, char** argv) {
  std::string addr = "127.0.0.1:8080";
  bool self_test = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--addr" && i + 1 < argc) {
      addr = argv[++i];
    } else if (a == "--self-test") {
      self_test = true;
    } else {
      std::fprintf(stderr, "usage: http_hello [--addr host:port] [--self-test]\n");
      return 2;
    }
  }
  return goro::run([&] {
    goro::Chan<std::monostate> quit(1);
    http::ServeMux mux;
    mux.handle_func("GET /hello/{name}", [](http::ResponseWriter& w, http::Request& r) {
      w.header().set("Content-Type", "text/plain; charset=utf-8");
      w.write("hello, " + std::string(r.path_value("name")) + "\n");
    });
    mux.handle_func("GET /quit", [&](http::ResponseWriter& w, http::Request&) {
      w.write("bye\n");
      quit.try_send({});
    });
    http::Server srv({.handler = mux.handler(), .read_header_timeout = 5s, .idle_timeout = 60s});

    // Listening first (rather than listen_and_serve) tells us the port of ":0".
    net::Listener ln = net::listen("tcp", addr);
    std::printf("listening on %s\n", ln.addr().c_str());
    std::fflush(stdout);
    goro::WaitGroup wg;
    wg.go([&] {
      quit.recv();
      auto [ctx, cancel] = goro::with_timeout(goro::Context::background(), 10s);
      srv.shutdown(ctx);  // in-flight requests finish; throws if they take over 10 s
      cancel();
    });
    int status = 0;
    if (self_test) {
      goro::go([&] {
        std::string resp = fetch(ln.addr(), "/hello/gopher");
        bool ok =
            resp.starts_with("HTTP/1.1 200 OK\r\n") && resp.ends_with("\r\n\r\nhello, gopher\n");
        std::printf("self-test: GET /hello/gopher -> %s\n", ok ? "200 hello, gopher" : "BUG");
        if (!ok) std::printf("BUG: unexpected response:\n%s\n", resp.c_str());
        std::string missing = fetch(ln.addr(), "/nothing");
        std::printf("self-test: GET /nothing -> %.13s\n",
                    missing.size() > 9 ? missing.c_str() + 9 : "BUG");
        fetch(ln.addr(), "/quit");
      });
    }
    try {
      srv.serve(ln);
    } catch (const http::ErrServerClosed&) {
      std::printf("server closed\n");
    }
    wg.wait();
    return status;
  });
}
