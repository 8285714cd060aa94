// goro http: Go's net/http server on goro::net (target goro::http; HTTP parsing by Boost.Beast).
//
//   #include <goro/goro.hpp>
//   #include <goro/http.hpp>
//
//   int main() {
//     goro::run([] {
//       goro::http::ServeMux mux;
//       mux.handle_func("GET /hello/{name}", [](goro::http::ResponseWriter& w,
//                                               goro::http::Request& r) {
//         w.header().set("Content-Type", "text/plain");
//         w.write("hello, " + std::string(r.path_value("name")) + "\n");
//       });
//       goro::http::Server srv({.addr = "127.0.0.1:8080", .handler = mux.handler()});
//       try {
//         srv.listen_and_serve();  // returns only by throwing; another goroutine may call
//       } catch (const goro::http::ErrServerClosed&) {  // srv.shutdown(ctx) to stop it
//       }
//     });
//   }
//
// One goroutine per connection (it runs the handler too). Request bodies and response bodies
// stream: Request::read hands out what arrived, ResponseWriter::write sends once its 4 KiB
// buffer fills, with the Content-Length the handler set or else chunked. A handler that
// throws gets a 500 if it wrote nothing yet; its connection is closed and the server goes on.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "goro/context.hpp"
#include "goro/net.hpp"
#include "goro/time.hpp"

namespace goro::http {

// Thrown by Server::serve and listen_and_serve after shutdown() or close() (Go's
// http.ErrServerClosed), also when they are called after it.
struct ErrServerClosed : std::runtime_error {
  ErrServerClosed() : std::runtime_error("http: Server closed") {}
};
// Thrown by Request::read once the body passes Server::Options::max_body_bytes, and by
// read_all past its limit (Go's http.MaxBytesError). A handler that lets it escape before
// writing anything answers 413.
struct MaxBytesError : std::runtime_error {
  explicit MaxBytesError(std::int64_t limit);
  std::int64_t limit;
};

// Header fields in arrival order; names compare case-insensitively (Go's http.Header).
class Header {
 public:
  using Field = std::pair<std::string, std::string>;
  std::string get(std::string_view name) const;  // the first value, "" if absent
  std::vector<std::string> values(std::string_view name) const;
  bool has(std::string_view name) const;
  void set(std::string_view name, std::string_view value);  // replaces every value
  void add(std::string_view name, std::string_view value);
  void del(std::string_view name);
  std::vector<Field>::const_iterator begin() const { return fields_.begin(); }
  std::vector<Field>::const_iterator end() const { return fields_.end(); }
  std::size_t size() const { return fields_.size(); }

 private:
  std::vector<Field> fields_;
};

namespace detail {
// The body source behind a Request (the server's connection, or a test's fake).
class BodyReader {
 public:
  virtual std::size_t read(std::span<std::byte> buf) = 0;  // 0 at the end of the body
 protected:
  ~BodyReader() = default;
};
}  // namespace detail

class Request {
 public:
  std::string method;               // "GET"
  std::string target;               // as sent: "/users/7?x=1"
  std::string path;                 // percent-decoded path: "/users/7"
  std::string raw_query;            // "x=1"
  std::string proto;                // "HTTP/1.1"
  Header headers;                   // Host stays in here too
  std::string host;                 // the Host header
  std::string remote_addr;          // the peer, "127.0.0.1:51234"
  std::int64_t content_length = 0;  // -1: unknown (chunked)

  // Streams the body: parks until some of it arrived, returns 0 at its end. The first read
  // of a request that sent "Expect: 100-continue" sends "100 Continue". Throws MaxBytesError
  // past the server's max_body_bytes, net::Error/Timeout when the connection fails.
  std::size_t read(std::span<std::byte> buf);
  // The rest of the body; throws MaxBytesError if it is longer than limit.
  std::string read_all(std::size_t limit = 10 << 20);
  // The first value of a query parameter, percent-decoded ("" if absent).
  std::string query_value(std::string_view name) const;
  // A wildcard of the ServeMux pattern that matched ("" if there is none of that name).
  std::string_view path_value(std::string_view name) const;
  void set_path_value(std::string_view name, std::string_view value);
  // Go's r.Context(): cancelled when the client's connection closes (seen once the body has
  // been read), when the server is closed, and when the handler returns.
  const Context& context() const { return ctx_; }
  void set_context(Context ctx) { ctx_ = std::move(ctx); }

  detail::BodyReader* body = nullptr;  // nullptr: no body (the server sets it)

 private:
  std::vector<std::pair<std::string, std::string>> path_values_;
  Context ctx_ = Context::background();
};

// How a handler answers (Go's http.ResponseWriter). Headers are sent with the first flush
// of the body (or when the handler returns); later header() changes are ignored. Like the
// Request, it is valid only during the handler call and is not safe for concurrent use.
class ResponseWriter {
 public:
  virtual Header& header() = 0;
  // Status for the response (once; later calls are ignored). write() without it means 200.
  // 1xx statuses are ignored (the server sends "100 Continue" itself); outside 100..999
  // throws std::invalid_argument.
  virtual void write_header(int status) = 0;
  // Buffers up to 4 KiB, then sends. A handler that set Content-Length must write exactly
  // that many bytes (more throws std::length_error); otherwise a response that outgrows the
  // buffer is sent chunked (HTTP/1.0: until the connection closes). Throws net::Error when
  // the client went away.
  virtual std::size_t write(std::span<const std::byte> data) = 0;
  std::size_t write(std::string_view s) {
    return write(std::as_bytes(std::span(s.data(), s.size())));
  }
  virtual void flush() = 0;  // sends the headers and whatever is buffered now

 protected:
  ~ResponseWriter() = default;
};

using Handler = std::function<void(ResponseWriter&, Request&)>;

// Writes "<status> <reason>\n" as a text/plain body with the given status (Go's http.Error
// writes the message; here the message defaults to the reason phrase).
void error(ResponseWriter& w, int status, std::string_view message = {});
std::string_view status_text(int status);  // "Not Found"; "" for an unknown status

// Go 1.22's http.ServeMux. A pattern is "[METHOD ]/path": segments are literals, "{name}"
// (one segment), "{name...}" (the rest, last only) or "{$}" (the end, after a trailing "/").
// A pattern ending in "/" matches every path below it. The most specific pattern wins
// (literal over {name} over the rest); with equal paths, one with a method beats one
// without. "GET" also serves HEAD. A path that some pattern matches for other methods only
// answers 405 with Allow; no match answers 404; "/dir" where only "/dir/" exists, a 301.
class ServeMux {
 public:
  ServeMux();
  ~ServeMux();
  ServeMux(const ServeMux&) = delete;
  ServeMux& operator=(const ServeMux&) = delete;
  // Throws std::invalid_argument for a malformed pattern or one registered twice.
  void handle(std::string_view pattern, Handler h);
  void handle_func(std::string_view pattern, Handler h) { handle(pattern, std::move(h)); }
  void serve_http(ResponseWriter& w, Request& r);  // route (sets r's path values) and call
  // A Handler that routes through this mux; the mux must outlive it. Register every
  // pattern before serving (handle does not lock against concurrent routing).
  Handler handler();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Server {
 public:
  struct Options {
    std::string addr = ":80";                // for listen_and_serve: "host:port", ":port"
    Handler handler{};                       // required
    std::size_t max_header_bytes = 1 << 20;  // request line + headers; more: 431
    std::int64_t max_body_bytes = -1;        // per request, < 0 none; more: 413
    int max_connections = 0;  // served at once, 0 none; more wait in the listen backlog
    Clock::duration read_header_timeout{};  // 0: read_timeout (both 0: none)
    Clock::duration read_timeout{};         // the whole request, headers and body
    Clock::duration write_timeout{};        // from the end of the headers to the response's end
    Clock::duration idle_timeout{};         // keep-alive wait; 0: read_timeout
    // Receives "http: panic serving 127.0.0.1:5555: <what>" and other server errors;
    // empty: stderr.
    std::function<void(std::string_view)> error_log{};
  };

  explicit Server(Options opts);
  // close(), then waits until every serve() call and connection goroutine has ended (a
  // handler blocked on something other than its connection keeps it waiting).
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Listens on options().addr ("tcp") and serves; throws ErrServerClosed after shutdown.
  void listen_and_serve();
  // Accepts on ln (it stays the caller's) until shutdown() or close() closes it; throws
  // ErrServerClosed then, or the accept error that stopped it.
  void serve(net::Listener& ln);
  // Go's Server.Shutdown: closes the listeners and idle connections, lets requests in
  // flight finish (their responses say "Connection: close"), returns once every connection
  // is closed. If ctx ends first, throws ctx's error (Canceled/DeadlineExceeded); the
  // remaining connections stay open (call close()).
  void shutdown(const Context& ctx);
  // Closes listeners and every connection now (handlers in flight see net::Closed).
  void close();
  const Options& options() const;

  struct Impl;  // internal

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace goro::http
