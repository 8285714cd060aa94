// goro_http_server: the goro side of the HTTP benchmark (bench/http.sh drives it with wrk).
// Go's twin is `go_bench --serve-http ADDR`: the same hello-world handler on net/http.
//
//   goro_http_server [--procs N] [--addr 127.0.0.1:0]
//
// Prints "listening on HOST:PORT" once it accepts, then serves until killed.
#include <cstdio>
#include <cstdlib>
#include <goro/goro.hpp>
#include <goro/http.hpp>
#include <string>

int main(int argc, char** argv) {
  int procs = 0;
  std::string addr = "127.0.0.1:0";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--procs" && i + 1 < argc) {
      procs = std::atoi(argv[++i]);
    } else if (a == "--addr" && i + 1 < argc) {
      addr = argv[++i];
    } else {
      std::fprintf(stderr, "usage: goro_http_server [--procs N] [--addr HOST:PORT]\n");
      return 2;
    }
  }
  goro::run(
      [&] {
        goro::http::ServeMux mux;
        mux.handle_func("/", [](goro::http::ResponseWriter& w, goro::http::Request&) {
          w.header().set("Content-Type", "text/plain; charset=utf-8");
          w.write("hello, world\n");
        });
        goro::net::Listener ln = goro::net::listen("tcp", addr);
        std::printf("listening on %s\n", ln.addr().c_str());
        std::fflush(stdout);
        goro::http::Server srv({.handler = mux.handler()});
        srv.serve(ln);
      },
      goro::Options{.procs = procs});
  return 0;
}
