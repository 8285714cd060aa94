// goro::http::Server: a goroutine per connection, requests parsed by Beast's request_parser
// fed with put() from bytes read by net::Conn, responses framed here.
//
// Lifetimes and invariants:
//  - Server::Impl is owned by the Server. Every serve() call and every connection goroutine
//    is counted in Impl::users (add before it starts, done() as its very last touch of the
//    Impl); ~Server closes everything and waits for that count, so nothing of the server
//    runs once the destructor returns (WaitGroup allows destruction right after wait()).
//    Impl::mu (a goro::Mutex: holders may park in
//    Conn/Listener::close) guards `listeners`, `conns`, every ServerConn::state and the
//    closing of `drained`. `shutting` only ever goes false -> true, under mu; it is atomic
//    so that the response path can read it without the lock.
//  - A ServerConn is owned by its goroutine. It is in `conns` from before its goroutine
//    starts until it erases itself under mu, after which nobody else touches it; while it
//    is in `conns`, shutdown()/close() may call conn.close() on it from another goroutine
//    (net::Conn allows that: parked reads/writes throw net::Closed).
//  - The read buffer holds at most one request header at a time (it grows up to
//    max_header_bytes + kSlack) and otherwise kReadBuf bytes: request bodies pass through it
//    into the handler's span, never accumulated. The response buffer holds at most
//    kWriteBuf bytes of body; larger writes go to the socket directly.
//  - One request at a time per connection: pipelined requests wait in the read buffer (or
//    the socket) and are answered in order.
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <variant>

#include "goro/goro.hpp"
#include "goro/http.hpp"
#include "internal.hpp"

namespace goro::http {

namespace bhttp = boost::beast::http;
using Parser = bhttp::request_parser<bhttp::buffer_body>;

namespace {

constexpr std::size_t kReadBuf = 16 << 10;
constexpr std::size_t kSlack = 4 << 10;                   // room past max_header_bytes for one read
constexpr std::size_t kWriteBuf = 4 << 10;                // Go's bufferBeforeChunkingSize
constexpr std::int64_t kMaxDrain = 256 << 10;             // Go's maxPostHandlerReadBytes
constexpr auto kLinger = std::chrono::milliseconds(500);  // Go's rstAvoidanceDelay

bool body_allowed(int status) {
  return !(status >= 100 && status < 200) && status != 204 && status != 304;
}

std::string http_date() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

bool clean_field(std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; }

// A status line and plain-text body for errors the server answers itself.
std::string canned(int status, std::string_view extra_headers = {}) {
  std::string text = std::to_string(status) + " " + std::string(status_text(status));
  return "HTTP/1.1 " + text + "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(text.size() + 1) + "\r\n" + std::string(extra_headers) +
         "Connection: close\r\n\r\n" + text + "\n";
}

}  // namespace

std::string_view status_text(int status) {
  if (status < 100 || status > 999) return {};
  auto s = bhttp::int_to_status(static_cast<unsigned>(status));
  if (s == bhttp::status::unknown) return {};
  auto r = bhttp::obsolete_reason(s);
  return {r.data(), r.size()};
}

struct ServerConn;

struct Server::Impl {
  explicit Impl(Options o) : opts(std::move(o)) {
    if (opts.max_connections > 0) slots = Chan<std::monostate>(opts.max_connections);
  }

  void log(std::string_view msg) const {
    if (opts.error_log) {
      opts.error_log(msg);
    } else {
      std::cerr << msg << '\n';
    }
  }
  // Under mu: stop accepting (every serve() sees ErrServerClosed).
  void begin_shutdown_locked() {
    if (!shutting.exchange(true)) done.close();
    for (net::Listener* ln : listeners) ln->close();
  }
  void maybe_drained_locked() {
    if (shutting.load() && conns.empty() && !drained_closed) {
      drained_closed = true;
      drained.close();
    }
  }
  void release_slot() {
    if (opts.max_connections > 0) slots.try_recv();
  }

  Options opts;
  Mutex mu;
  std::atomic<bool> shutting{false};
  std::vector<net::Listener*> listeners;  // guarded by mu
  std::unordered_set<ServerConn*> conns;  // guarded by mu
  Chan<std::monostate> done;              // closed when shutting starts
  Chan<std::monostate> drained;           // closed once shutting and conns is empty
  bool drained_closed = false;            // guarded by mu
  Chan<std::monostate> slots{nullptr};    // max_connections tokens (nil: no limit)
  WaitGroup users;                        // serve() calls and connection goroutines
};

namespace {

// The response of one request. Body bytes wait in `pending` until the head is sent; the
// framing (length, chunked, until close) is chosen when the head goes out.
class Response final : public ResponseWriter {
 public:
  enum class Mode { undecided, none, length, chunked, until_close };

  Response(ServerConn& c, bool head_request, bool http11)
      : c_(c), head_(head_request), http11_(http11) {}

  Header& header() override { return hdr_; }
  void write_header(int status) override {
    if (status_ != 0) return;
    if (status < 100 || status > 999)
      throw std::invalid_argument("http: invalid status code " + std::to_string(status));
    if (status < 200) return;  // informational responses are not supported: not final
    status_ = status;
  }
  std::size_t write(std::span<const std::byte> data) override;
  void flush() override;

  void finish();  // after the handler returned
  bool head_sent() const { return head_sent_; }
  bool must_close() const { return close_; }
  void set_close() { close_ = true; }
  // Drops what the handler set up so that an error status can be sent instead.
  void reset() {
    hdr_ = Header();
    status_ = 0;
    pending_.clear();
    written_ = 0;
  }

 private:
  std::string build_head(bool final);  // decides the framing and the connection's fate
  void send(std::string_view s);
  void frame(std::string& out, std::string_view s) const;  // appends s with the framing
  void send_with(std::string& out, std::string_view s);
  std::int64_t declared_length() const;

  ServerConn& c_;
  bool head_;
  bool http11_;
  Header hdr_;
  int status_ = 0;
  bool head_sent_ = false;
  bool close_ = false;
  Mode mode_ = Mode::undecided;
  std::int64_t declared_ = -1;  // the handler's Content-Length
  std::int64_t written_ = 0;    // body bytes the handler wrote
  std::string pending_;         // body bytes not sent yet (<= kWriteBuf)
};

}  // namespace

// One accepted connection and the request being served on it.
struct ServerConn final : detail::BodyReader {
  enum class State { fresh, active, idle };

  ServerConn(Server::Impl* s, net::Conn c)
      : srv(s), conn(std::move(c)), remote(conn.remote_addr()), buf(kReadBuf) {}

  void serve();
  std::size_t read(std::span<std::byte> dst) override;

  bool set_state(State st);  // false: the server is shutting down and this conn is not active
  std::size_t fill();
  void write(std::string_view s);  // conn.write, noting a failure of the connection
  int read_header();  // 0 ok, -1 end of stream between requests, -2 cut short, else a status
  void reply_and_close(int status, std::string_view extra = {});
  bool drain();  // reads the rest of the request body (bounded); false if it did not end
  void linger_close();

  Server::Impl* srv;
  net::Conn conn;
  std::string remote;
  State state = State::fresh;  // guarded by srv->mu

  std::vector<char> buf;
  std::size_t beg = 0, end = 0;  // unparsed bytes are buf[beg, end)
  std::optional<Parser> parser;

  // The current request.
  Response* resp = nullptr;
  bool expect_continue = false;
  bool sent_continue = false;
  bool body_failed = false;  // malformed or too long: the connection cannot be reused
  bool body_malformed = false;
  bool conn_failed = false;  // a read or write of this connection threw

  // Go's background read: once the request body is consumed, a goroutine waits for one
  // byte so that a client that hangs up cancels the request's context. It alone touches
  // conn's read side and buf until stop_background_read() has received from bg_done.
  void start_background_read();
  void stop_background_read() noexcept;
  std::function<void()> cancel_ctx;  // the current request's
  bool bg_active = false;
  Chan<std::monostate> bg_done{nullptr};
  std::int64_t body_read = 0;
};

namespace {

void Response::send(std::string_view s) {
  if (!s.empty()) c_.write(s);
}

void Response::frame(std::string& out, std::string_view s) const {
  if (head_ || mode_ == Mode::none || s.empty()) return;
  if (mode_ == Mode::chunked) {
    char hex[24];
    int n = std::snprintf(hex, sizeof hex, "%zx\r\n", s.size());
    out.append(hex, static_cast<std::size_t>(n));
    out.append(s);
    out += "\r\n";
  } else {
    out.append(s);
  }
}

// Sends out, then s framed; a large s goes out from the handler's memory, not copied.
void Response::send_with(std::string& out, std::string_view s) {
  if (s.size() <= kWriteBuf || head_ || mode_ == Mode::none) {
    frame(out, s);
    send(out);
  } else {
    if (mode_ == Mode::chunked) {
      char hex[24];
      int n = std::snprintf(hex, sizeof hex, "%zx\r\n", s.size());
      out.append(hex, static_cast<std::size_t>(n));
    }
    send(out);
    send(s);
    if (mode_ == Mode::chunked) send("\r\n");
  }
  out.clear();
}

std::int64_t Response::declared_length() const {
  if (head_sent_) return declared_;
  std::string cl = hdr_.get("Content-Length");
  if (cl.empty()) return -1;
  char* endp = nullptr;
  long long v = std::strtoll(cl.c_str(), &endp, 10);
  return (endp == cl.c_str() || *endp != '\0' || v < 0) ? -1 : v;
}

std::size_t Response::write(std::span<const std::byte> data) {
  if (status_ == 0) write_header(200);
  if (data.empty()) return 0;
  if (!body_allowed(status_))
    throw std::logic_error("http: request method or response status code does not allow body");
  std::int64_t declared = declared_length();
  if (declared >= 0 && written_ + static_cast<std::int64_t>(data.size()) > declared)
    throw std::length_error("http: wrote more than the declared Content-Length");
  written_ += static_cast<std::int64_t>(data.size());
  std::string_view s(reinterpret_cast<const char*>(data.data()), data.size());
  if (pending_.size() + s.size() <= kWriteBuf) {
    pending_.append(s);
    return data.size();
  }
  std::string out;
  if (!head_sent_) out = build_head(false);
  frame(out, pending_);
  pending_.clear();
  send_with(out, s);
  return data.size();
}

void Response::flush() {
  if (status_ == 0) write_header(200);
  std::string out;
  if (!head_sent_) out = build_head(false);
  frame(out, pending_);
  pending_.clear();
  send(out);
}

std::string Response::build_head(bool final) {
  if (status_ == 0) status_ = 200;
  head_sent_ = true;
  std::string cl = hdr_.get("Content-Length");
  if (!body_allowed(status_)) {
    mode_ = Mode::none;
    if (status_ != 304) hdr_.del("Content-Length");
    hdr_.del("Transfer-Encoding");
  } else if (!cl.empty()) {
    char* endp = nullptr;
    long long v = std::strtoll(cl.c_str(), &endp, 10);
    if (endp == cl.c_str() || *endp != '\0' || v < 0) {
      hdr_.del("Content-Length");
      mode_ = http11_ ? Mode::chunked : Mode::until_close;
    } else {
      mode_ = Mode::length;
      declared_ = v;
    }
  } else if (final) {
    mode_ = Mode::length;
    declared_ = written_;
    if (!(head_ && written_ == 0)) hdr_.set("Content-Length", std::to_string(written_));
  } else {
    mode_ = http11_ ? Mode::chunked : Mode::until_close;
  }
  hdr_.del("Transfer-Encoding");
  if (mode_ == Mode::chunked) hdr_.set("Transfer-Encoding", "chunked");
  if (mode_ == Mode::until_close) close_ = true;

  // Decide now whether the connection survives: the head must say so.
  ServerConn& c = c_;
  if (!c.parser->keep_alive() || c.srv->shutting.load() || c.body_failed) close_ = true;
  if (!c.parser->is_done()) {
    if (c.expect_continue && !c.sent_continue) close_ = true;  // the client holds the body back
    auto left = c.parser->content_length_remaining();
    if (final && (!left || static_cast<std::int64_t>(*left) > kMaxDrain)) close_ = true;
  }
  if (detail::iequals(hdr_.get("Connection"), "close")) close_ = true;
  hdr_.del("Connection");
  if (close_) {
    hdr_.set("Connection", "close");
  } else if (!http11_) {
    hdr_.set("Connection", "keep-alive");
  }
  if (!hdr_.has("Date")) hdr_.set("Date", http_date());

  std::string head = "HTTP/1.1 " + std::to_string(status_) + " ";
  head += status_text(status_);
  head += "\r\n";
  for (const auto& [k, v] : hdr_) {
    if (k.empty() || !clean_field(k) || !clean_field(v)) continue;
    head += k;
    head += ": ";
    head += v;
    head += "\r\n";
  }
  head += "\r\n";
  return head;
}

void Response::finish() {
  std::string out;
  if (!head_sent_) out = build_head(true);
  frame(out, pending_);
  pending_.clear();
  if (mode_ == Mode::chunked && !head_) out += "0\r\n\r\n";
  send(out);
  if (mode_ == Mode::length && !head_ && written_ < declared_) close_ = true;  // cut short
}

}  // namespace

bool ServerConn::set_state(State st) {
  std::lock_guard lock(srv->mu);
  state = st;
  return !(st != State::active && srv->shutting.load());
}

std::size_t ServerConn::fill() {
  if (beg == end) beg = end = 0;
  if (end == buf.size() && beg > 0) {
    std::memmove(buf.data(), buf.data() + beg, end - beg);
    end -= beg;
    beg = 0;
  }
  std::size_t n;
  try {
    n = conn.read(buf.data() + end, buf.size() - end);
  } catch (const net::Error&) {
    conn_failed = true;
    throw;
  }
  end += n;
  return n;
}

void ServerConn::write(std::string_view s) {
  try {
    conn.write(s);
  } catch (const net::Error&) {
    conn_failed = true;
    throw;
  }
}

int ServerConn::read_header() {
  const auto& o = srv->opts;
  parser.emplace();
  parser->header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(o.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  // Counted in read(), where a chunked body is seen too. Not boost::none: Beast 1.74
  // compares a Content-Length with the optional limit, and every value exceeds none.
  parser->body_limit(std::numeric_limits<std::uint64_t>::max());
  parser->eager(false);
  const std::size_t cap = o.max_header_bytes + kSlack;
  for (;;) {
    if (end > beg) {
      boost::beast::error_code ec;
      std::size_t n = parser->put(boost::asio::const_buffer(buf.data() + beg, end - beg), ec);
      beg += n;
      if (!ec && parser->is_header_done()) return 0;
      if (ec == bhttp::error::header_limit) return 431;
      if (ec && ec != bhttp::error::need_more) return 400;
    }
    if (beg == 0 && end == buf.size()) {  // one unfinished header fills the buffer
      if (buf.size() >= cap) return 431;
      buf.resize(std::min(cap, buf.size() * 2));
    }
    bool partial = end > beg;
    if (fill() == 0) return partial ? -2 : -1;
  }
}

std::size_t ServerConn::read(std::span<std::byte> dst) {
  if (body_malformed) throw net::Error(std::errc::protocol_error, "http: malformed request body");
  if (!parser || parser->is_done() || dst.empty()) return 0;
  if (expect_continue && !sent_continue && resp != nullptr && !resp->head_sent()) {
    write("HTTP/1.1 100 Continue\r\n\r\n");
    sent_continue = true;
  }
  for (;;) {
    if (end > beg) {
      auto& body = parser->get().body();
      body.data = dst.data();
      body.size = dst.size();
      body.more = true;
      boost::beast::error_code ec;
      std::size_t n = parser->put(boost::asio::const_buffer(buf.data() + beg, end - beg), ec);
      beg += n;
      std::size_t got = dst.size() - body.size;
      body.data = nullptr;
      if (ec == bhttp::error::need_buffer || ec == bhttp::error::need_more) ec = {};
      if (ec) {
        body_failed = body_malformed = true;
        throw net::Error(std::errc::protocol_error,
                         "http: malformed request body: " + ec.message());
      }
      if (parser->is_done()) start_background_read();
      if (got > 0) {
        body_read += static_cast<std::int64_t>(got);
        std::int64_t max = srv->opts.max_body_bytes;
        if (max >= 0 && body_read > max) {
          body_failed = true;
          throw MaxBytesError(max);
        }
        return got;
      }
      if (parser->is_done()) return 0;
      if (n > 0) continue;
    }
    if (fill() == 0) {
      body_failed = conn_failed = true;
      throw net::Error("unexpected EOF");
    }
  }
}

bool ServerConn::drain() {
  if (parser->is_done()) return true;
  if (body_failed || (expect_continue && !sent_continue)) return false;
  std::byte scratch[4096];
  std::int64_t total = 0;
  try {
    while (total <= kMaxDrain) {
      std::size_t n = read(scratch);
      if (n == 0) return true;
      total += static_cast<std::int64_t>(n);
    }
  } catch (const std::exception&) {
  }
  return false;
}

void ServerConn::reply_and_close(int status, std::string_view extra) {
  try {
    conn.write(canned(status, extra));
  } catch (const net::Error&) {
  }
  linger_close();
}

// Go's closeWriteAndWait: a close with unread input makes the kernel send RST, which can
// destroy the response before the client reads it; half-close and let the client go first.
void ServerConn::linger_close() {
  try {
    conn.close_write();
    conn.set_read_deadline(Clock::now() + kLinger);
    char scratch[4096];
    std::size_t total = 0;
    while (total < (1u << 20)) {
      std::size_t n = conn.read(scratch, sizeof scratch);
      if (n == 0) break;
      total += n;
    }
  } catch (const net::Error&) {
  }
  conn.close();
}

void ServerConn::start_background_read() {
  if (bg_active || !cancel_ctx) return;
  bg_active = true;
  bg_done = Chan<std::monostate>(1);
  try {
    conn.set_read_deadline({});
  } catch (const net::Error&) {
  }
  go([this] {
    char byte = 0;
    bool hung_up = false;
    try {
      if (conn.read(&byte, 1) == 1) {
        // The next pipelined request has begun: keep its byte after the buffered ones.
        if (end == buf.size()) buf.resize(buf.size() + 1);
        buf[end++] = byte;
      } else {
        hung_up = true;
      }
    } catch (const net::Timeout&) {
      // stop_background_read() moved the deadline: the request is over, not the client
    } catch (...) {
      hung_up = true;  // reset, or closed by Server::close()
    }
    if (hung_up) cancel_ctx();
    bg_done.send({});
  });
}

void ServerConn::stop_background_read() noexcept {
  if (bg_active) {
    try {
      conn.set_read_deadline(Clock::time_point(Clock::duration(1)));  // long past
    } catch (...) {
    }
    bg_done.recv();
    bg_active = false;
  }
  if (cancel_ctx) {
    cancel_ctx();
    cancel_ctx = nullptr;
  }
}

void ServerConn::serve() {
  const auto& o = srv->opts;
  const Clock::duration hdr_timeout =
      o.read_header_timeout > Clock::duration::zero() ? o.read_header_timeout : o.read_timeout;
  const Clock::duration idle_timeout =
      o.idle_timeout > Clock::duration::zero() ? o.idle_timeout : o.read_timeout;
  auto deadline = [](Clock::time_point from, Clock::duration d) {
    return d > Clock::duration::zero() ? from + d : Clock::time_point{};
  };
  const Clock::time_point accepted = Clock::now();
  bool first = true;
  for (;;) {
    // Until the first byte of a request arrives the connection is new or idle, and
    // shutdown() may close it; from then on it is active and left to finish.
    if (!set_state(first ? State::fresh : State::idle)) return;
    if (beg == end) {
      conn.set_read_deadline(first ? deadline(accepted, hdr_timeout)
                                   : deadline(Clock::now(), idle_timeout));
      if (fill() == 0) return;
    }
    set_state(State::active);
    const Clock::time_point t0 = first ? accepted : Clock::now();
    conn.set_read_deadline(deadline(t0, hdr_timeout));
    int h = read_header();
    if (h == -1 || h == -2) return;
    if (h != 0) return reply_and_close(h);

    auto& msg = parser->get();
    Request req;
    req.method = std::string(sv(msg.method_string()));
    req.target = std::string(sv(msg.target()));
    req.proto =
        "HTTP/" + std::to_string(msg.version() / 10) + "." + std::to_string(msg.version() % 10);
    for (const auto& f : msg) req.headers.add(sv(f.name_string()), sv(f.value()));
    req.host = req.headers.get("Host");
    req.remote_addr = remote;
    if (msg.version() >= 11 && !req.headers.has("Host")) return reply_and_close(400);
    std::string_view raw = req.target;
    if (auto scheme = raw.find("://"); scheme != std::string_view::npos && raw.front() != '/') {
      std::size_t slash = raw.find('/', scheme + 3);
      raw = slash == std::string_view::npos ? std::string_view("/") : raw.substr(slash);
    }
    std::size_t q = raw.find('?');
    if (q != std::string_view::npos) req.raw_query = raw.substr(q + 1);
    auto path = detail::percent_decode(raw.substr(0, q), false);
    if (!path) return reply_and_close(400);
    req.path = std::move(*path);
    auto cl = parser->content_length();
    req.content_length = cl ? static_cast<std::int64_t>(*cl) : (parser->chunked() ? -1 : 0);
    if (o.max_body_bytes >= 0 && req.content_length > o.max_body_bytes) return reply_and_close(413);

    conn.set_read_deadline(deadline(t0, o.read_timeout));
    conn.set_write_deadline(deadline(Clock::now(), o.write_timeout));
    expect_continue =
        msg.version() >= 11 && detail::iequals(req.headers.get("Expect"), "100-continue");
    sent_continue = false;
    body_failed = body_malformed = false;
    body_read = 0;
    req.body = parser->is_done() ? nullptr : this;

    auto [ctx, cancel] = with_cancel(Context::background());
    req.set_context(ctx);
    cancel_ctx = std::move(cancel);
    // Ends the background read and cancels the context on every way out of this request.
    struct StopBackground {
      ServerConn& c;
      ~StopBackground() { c.stop_background_read(); }
    } stop_bg{*this};
    if (parser->is_done()) start_background_read();

    Response w(*this, req.method == "HEAD", msg.version() >= 11);
    resp = &w;
    int fail_status = 0;
    try {
      o.handler(w, req);
    } catch (const MaxBytesError&) {
      fail_status = 413;
    } catch (const std::exception& e) {
      // The client went away or timed out: nothing to log or answer, as in Go. (A net::Error
      // from the handler's own sockets is a failure like any other.)
      if (conn_failed) {
        resp = nullptr;
        return;
      }
      if (body_malformed) {
        fail_status = 400;
      } else {
        srv->log("http: panic serving " + remote + ": " + e.what());
        fail_status = 500;
      }
    } catch (...) {
      srv->log("http: panic serving " + remote + ": unknown exception");
      fail_status = 500;
    }
    if (fail_status != 0) {
      stop_background_read();  // before reply_and_close reads the connection
      // Go recovers the panic and closes the connection; a response already under way is cut.
      resp = nullptr;
      if (w.head_sent()) return;
      return reply_and_close(fail_status);
    }
    stop_background_read();  // the handler returned: its context ends, buf is ours again
    w.finish();
    resp = nullptr;
    if (w.must_close() || !drain()) {
      if (end > beg || !parser->is_done()) return linger_close();
      return;
    }
    first = false;
  }
}

Server::Server(Options opts) {
  if (!opts.handler) throw std::invalid_argument("http: Server needs a handler");
  impl_ = std::make_unique<Impl>(std::move(opts));
}

Server::~Server() {
  // Outside a goroutine there is nothing to wait for: run() has returned and abandoned
  // goroutines are never resumed.
  if (goroutine_id() == 0) return;
  close();
  impl_->users.wait();
}

const Server::Options& Server::options() const { return impl_->opts; }

void Server::listen_and_serve() {
  if (impl_->shutting.load()) throw ErrServerClosed();
  net::Listener ln = net::listen("tcp", impl_->opts.addr.empty() ? ":80" : impl_->opts.addr);
  serve(ln);
}

void Server::serve(net::Listener& ln) {
  Impl* s = impl_.get();
  {
    std::lock_guard lock(s->mu);
    if (s->shutting.load()) throw ErrServerClosed();
    s->listeners.push_back(&ln);
    s->users.add(1);
  }
  struct Unregister {
    Impl& s;
    net::Listener* ln;
    ~Unregister() {
      {
        std::lock_guard lock(s.mu);
        std::erase(s.listeners, ln);
      }
      s.users.done();  // the last touch: ~Server may free s now
    }
  } unregister{*s, &ln};

  Clock::duration backoff{};
  for (;;) {
    if (s->opts.max_connections > 0) {
      // LimitListener: hold a slot before accepting, so extra clients wait in the backlog.
      std::size_t which = select(on_send(s->slots, std::monostate{}), on_recv(s->done));
      if (which == 1) throw ErrServerClosed();
    }
    net::Conn c;
    try {
      c = ln.accept();
      backoff = {};
    } catch (const net::Error& e) {
      s->release_slot();
      if (s->shutting.load()) throw ErrServerClosed();
      if (dynamic_cast<const net::Timeout*>(&e) || dynamic_cast<const net::Closed*>(&e)) throw;
      // EMFILE and friends: Go's accept loop backs off from 5 ms up to 1 s.
      backoff = backoff == Clock::duration{}
                    ? std::chrono::milliseconds(5)
                    : std::min<Clock::duration>(backoff * 2, std::chrono::seconds(1));
      s->log(std::string("http: Accept error: ") + e.what() + "; retrying");
      sleep(backoff);
      continue;
    }
    auto sc = std::make_unique<ServerConn>(s, std::move(c));
    {
      std::lock_guard lock(s->mu);
      if (s->shutting.load()) {
        sc->conn.close();
        s->release_slot();
        throw ErrServerClosed();
      }
      s->conns.insert(sc.get());
      s->users.add(1);
    }
    go([sc = sc.release()] {
      std::unique_ptr<ServerConn> own(sc);
      Impl* srv = own->srv;
      try {
        own->serve();
      } catch (const std::exception&) {
        // a connection error (timeout, reset, closed by shutdown): the connection ends
      }
      own->conn.close();
      {
        std::lock_guard lock(srv->mu);
        srv->conns.erase(own.get());
        own.reset();
        srv->release_slot();
        srv->maybe_drained_locked();
      }
      srv->users.done();  // the last touch: ~Server may free srv now
    });
  }
}

void Server::shutdown(const Context& ctx) {
  Impl* s = impl_.get();
  {
    std::lock_guard lock(s->mu);
    s->begin_shutdown_locked();
    for (ServerConn* c : s->conns)
      if (c->state != ServerConn::State::active) c->conn.close();
    s->maybe_drained_locked();
  }
  select(on_recv(s->drained), on_recv(ctx.done()));
  std::lock_guard lock(s->mu);
  if (s->conns.empty()) return;
  if (auto err = ctx.err()) std::rethrow_exception(err);
}

void Server::close() {
  Impl* s = impl_.get();
  std::lock_guard lock(s->mu);
  s->begin_shutdown_locked();
  for (ServerConn* c : s->conns) c->conn.close();
  s->maybe_drained_locked();
}

}  // namespace goro::http
