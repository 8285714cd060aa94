// goro::http over loopback: keep-alive, pipelining, limits (431, 413), slowloris, a 100 MB
// streamed upload with flat memory, chunked responses, the router, handler exceptions,
// graceful shutdown, max_connections, Expect: 100-continue, HTTP/1.0.
//
// The client is goro::net plus Beast's response_parser, in the same process. Nothing waits
// by sleeping: tests synchronise on channels and on what the client reads.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "goro/goro.hpp"
#include "goro/http.hpp"
#include "goro/net.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
namespace http = goro::http;
namespace net = goro::net;
namespace bhttp = boost::beast::http;

namespace {

struct Resp {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool keep_alive = false;
  bool chunked = false;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A raw HTTP/1.1 client on one connection: requests are bytes written as given, responses
// are parsed in arrival order (pipelining works by writing several requests first).
class Client {
 public:
  explicit Client(const std::string& addr) : conn_(net::dial("tcp", addr)), buf_(64 << 10) {}

  void send(std::string_view s) { conn_.write(s); }
  net::Conn& conn() { return conn_; }

  // The next response; nullopt if the server closed the connection before sending a byte.
  std::optional<Resp> recv(bool head_request = false) {
    bhttp::response_parser<bhttp::string_body> p;
    p.body_limit(std::numeric_limits<std::uint64_t>::max());  // none misfires in Beast 1.74
    p.skip(head_request);
    for (;;) {
      if (end_ > beg_) {
        boost::beast::error_code ec;
        std::size_t n = p.put(boost::asio::const_buffer(buf_.data() + beg_, end_ - beg_), ec);
        beg_ += n;
        if (ec == bhttp::error::need_more) ec = {};
        if (ec)
          throw std::runtime_error("client: bad response: " + ec.message() +
                                   " in: " + std::string(buf_.data(), end_));
        if (p.is_done()) break;
        if (n > 0) continue;
      }
      if (beg_ == end_) beg_ = end_ = 0;
      if (end_ == buf_.size()) {
        std::copy(buf_.begin() + static_cast<long>(beg_), buf_.begin() + static_cast<long>(end_),
                  buf_.begin());
        end_ -= beg_;
        beg_ = 0;
        if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
      }
      std::size_t n = conn_.read(buf_.data() + end_, buf_.size() - end_);
      if (n == 0) {
        if (!p.got_some() && end_ == beg_) return std::nullopt;
        boost::beast::error_code ec;
        p.put_eof(ec);
        if (ec) throw std::runtime_error("client: cut short: " + ec.message());
        break;
      }
      end_ += n;
    }
    Resp r;
    auto& m = p.get();
    r.status = static_cast<int>(m.result_int());
    for (const auto& f : m)
      r.headers[lower(std::string_view(f.name_string().data(), f.name_string().size()))] =
          std::string(f.value());
    r.body = std::move(m.body());
    r.keep_alive = m.keep_alive();
    r.chunked = m.chunked();
    return r;
  }

  // True once the server closed the connection (end of stream or reset).
  bool closed_by_peer() {
    conn_.set_read_deadline(goro::Clock::now() + 10s);  // fail, not hang
    try {
      char c;
      return conn_.read(&c, 1) == 0;
    } catch (const net::Timeout&) {
      throw;
    } catch (const net::Error&) {
      return true;  // ECONNRESET
    }
  }

 private:
  net::Conn conn_;
  std::vector<char> buf_;
  std::size_t beg_ = 0, end_ = 0;
};

std::string get(std::string_view path, std::string_view extra = {}) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra) + "\r\n";
}

std::string post(std::string_view path, std::string_view body, std::string_view extra = {}) {
  return "POST " + std::string(path) +
         " HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra) + "\r\n" + std::string(body);
}

// A server on 127.0.0.1:0 serving in a goroutine of its own. stop() closes it and waits for
// serve() to throw ErrServerClosed.
class TestServer {
 public:
  explicit TestServer(http::Server::Options opts)
      : ln_(net::listen("tcp", "127.0.0.1:0")), addr_(ln_.addr()), srv_(quiet(std::move(opts))) {
    done_ = goro::Chan<bool>(1);
    goro::go([this] {
      bool closed = false;
      try {
        srv_.serve(ln_);
      } catch (const http::ErrServerClosed&) {
        closed = true;
      }
      done_.send(closed);
    });
  }
  ~TestServer() {
    if (!stopped_) stop();
  }
  http::Server& server() { return srv_; }
  const std::string& addr() const { return addr_; }
  std::vector<std::string> log() {
    std::lock_guard lock(*log_mu_);
    return *log_;
  }
  // true if serve() ended with ErrServerClosed
  bool stop() {
    stopped_ = true;
    srv_.close();
    return wait_served();
  }
  bool wait_served() {
    stopped_ = true;
    auto v = done_.recv();
    return v && *v;
  }

 private:
  http::Server::Options quiet(http::Server::Options o) {
    if (!o.error_log)
      o.error_log = [mu = log_mu_, log = log_](std::string_view m) {
        std::lock_guard lock(*mu);
        log->emplace_back(m);
      };
    return o;
  }

  std::shared_ptr<goro::Mutex> log_mu_ = std::make_shared<goro::Mutex>();
  std::shared_ptr<std::vector<std::string>> log_ = std::make_shared<std::vector<std::string>>();
  net::Listener ln_;
  std::string addr_;
  http::Server srv_;
  goro::Chan<bool> done_{nullptr};
  bool stopped_ = false;
};

void hello(http::ResponseWriter& w, http::Request& r) {
  w.header().set("Content-Type", "text/plain");
  w.write("hello " + r.path + "\n");
}

template <class F>
void run(F&& f) {
  goro::run(std::forward<F>(f), goro::Options{.procs = 2, .on_fatal = goro::OnFatal::raise});
}

long maxrss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

}  // namespace

TEST(Http, KeepAliveServesSeveralRequestsOnOneConnection) {
  run([] {
    goro::Mutex mu;
    std::vector<std::string> peers;
    TestServer ts({.handler = [&](http::ResponseWriter& w, http::Request& r) {
      {
        std::lock_guard lock(mu);
        peers.push_back(r.remote_addr);
      }
      hello(w, r);
    }});
    Client c(ts.addr());
    for (int i = 0; i < 5; ++i) {
      c.send(get("/n" + std::to_string(i)));
      auto r = c.recv();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->body, "hello /n" + std::to_string(i) + "\n");
      EXPECT_EQ(r->header("content-length"), std::to_string(r->body.size()));
      EXPECT_TRUE(r->keep_alive);
      EXPECT_FALSE(r->header("date").empty());
    }
    ASSERT_EQ(peers.size(), 5u);
    EXPECT_TRUE(std::all_of(peers.begin(), peers.end(), [&](auto& p) { return p == peers[0]; }));
    EXPECT_EQ(peers[0], c.conn().local_addr());
    EXPECT_TRUE(ts.stop());
  });
}

TEST(Http, PipelinedRequestsAreAnsweredInOrder) {
  run([] {
    TestServer ts({.handler = [](http::ResponseWriter& w, http::Request& r) {
      std::string body = r.read_all();
      w.write(r.method + " " + r.path + (body.empty() ? "" : ":" + body));
    }});
    Client c(ts.addr());
    c.send(
        get("/1") + post("/2", "payload") + get("/3") +
        "POST /4 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    const char* want[] = {"GET /1", "POST /2:payload", "GET /3", "POST /4:abc"};
    for (const char* w : want) {
      auto r = c.recv();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->body, w);
    }
  });
}

TEST(Http, OversizedHeadersGet431AndTheConnectionCloses) {
  run([] {
    std::atomic<int> calls{0};
    TestServer ts({.handler =
                       [&](http::ResponseWriter& w, http::Request& r) {
                         ++calls;
                         hello(w, r);
                       },
                   .max_header_bytes = 1024});
    Client small(ts.addr());
    small.send(get("/", "X-Fill: " + std::string(500, 'a') + "\r\n"));
    EXPECT_EQ(small.recv()->status, 200);

    Client c(ts.addr());
    c.send(get("/", "X-Big: " + std::string(8000, 'b') + "\r\n"));
    auto r = c.recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.closed_by_peer());
    EXPECT_EQ(calls.load(), 1);
  });
}

TEST(Http, OversizedBodyGets413) {
  run([] {
    std::atomic<int> calls{0};
    TestServer ts({.handler =
                       [&](http::ResponseWriter& w, http::Request& r) {
                         ++calls;
                         std::string b = r.read_all();
                         w.write(std::to_string(b.size()));
                       },
                   .max_body_bytes = 1000});
    {  // declared too long: answered before the handler runs
      Client c(ts.addr());
      c.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + std::string(100, 'x'));
      auto r = c.recv();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 413);
      EXPECT_TRUE(c.closed_by_peer());
      EXPECT_EQ(calls.load(), 0);
    }
    {  // chunked, found too long while the handler reads
      Client c(ts.addr());
      std::string chunk(600, 'y');
      c.send("POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" + chunk +
             "\r\n258\r\n" + chunk + "\r\n");
      auto r = c.recv();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 413);
      EXPECT_EQ(calls.load(), 1);
    }
    {  // within the limit
      Client c(ts.addr());
      c.send(post("/x", std::string(1000, 'z')));
      auto r = c.recv();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->body, "1000");
    }
  });
}

TEST(Http, SlowlorisConnectionIsClosedAfterTheReadHeaderTimeout) {
  run([] {
    TestServer ts({.handler = hello, .read_header_timeout = 300ms});
    auto start = goro::Clock::now();  // before dial: the server's clock starts later
    Client c(ts.addr());
    c.conn().set_read_deadline(goro::Clock::now() + 10s);  // the test's own failure bound
    c.send("GET / HTTP/1.1\r\nHost: t\r\n");
    goro::Chan<std::monostate> stop;
    goro::WaitGroup wg;
    // The attacker trickles a header line every 50 ms: never a complete header.
    wg.go([&] {
      for (int i = 0;; ++i) {
        if (goro::select(goro::on_recv(stop), goro::on_recv(goro::after(50ms))) == 0) return;
        try {
          c.conn().write("X-" + std::to_string(i) + ": y\r\n");
        } catch (const net::Error&) {
          return;
        }
      }
    });
    EXPECT_TRUE(c.closed_by_peer());
    auto took = goro_test::since(start);
    stop.close();
    wg.wait();
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 5s);
  });
}

TEST(Http, StreamedUploadOf100MBKeepsMemoryFlat) {
  run([] {
    constexpr std::int64_t kTotal = 100 << 20;
    std::int64_t got = 0;
    std::size_t max_read = 0;
    std::uint64_t sum = 0;
    TestServer ts({.handler = [&](http::ResponseWriter& w, http::Request& r) {
      std::vector<std::byte> buf(64 << 10);
      while (std::size_t n = r.read(buf)) {
        got += static_cast<std::int64_t>(n);
        max_read = std::max(max_read, n);
        for (std::size_t i = 0; i < n; i += 4096) sum += static_cast<unsigned char>(buf[i]);
      }
      w.write(std::to_string(got));
    }});
    Client c(ts.addr());
    long rss_before = maxrss_kib();
    c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(kTotal) +
           "\r\n\r\n");
    std::vector<std::byte> chunk(64 << 10, std::byte{7});
    for (std::int64_t sent = 0; sent < kTotal; sent += static_cast<std::int64_t>(chunk.size()))
      c.conn().write(chunk);
    auto r = c.recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, std::to_string(kTotal));
    EXPECT_EQ(got, kTotal);
    EXPECT_LE(max_read, std::size_t{64 << 10});
    EXPECT_GT(sum, 0u);
    long growth_mib = (maxrss_kib() - rss_before) / 1024;
    EXPECT_LT(growth_mib, 50) << "max RSS grew by " << growth_mib << " MiB";
  });
}

TEST(Http, StreamedResponseIsChunkedAndNotBuffered) {
  run([] {
    constexpr std::int64_t kTotal = 64 << 20;
    TestServer ts({.handler = [&](http::ResponseWriter& w, http::Request&) {
      std::string piece(64 << 10, 'r');
      for (std::int64_t sent = 0; sent < kTotal; sent += static_cast<std::int64_t>(piece.size()))
        w.write(piece);
    }});
    Client c(ts.addr());
    long rss_before = maxrss_kib();
    c.send(get("/stream"));
    // Count the body with a buffer_body parser so that the client does not hold it either.
    bhttp::response_parser<bhttp::buffer_body> p;
    p.body_limit(std::numeric_limits<std::uint64_t>::max());  // none misfires in Beast 1.74
    std::vector<char> in(64 << 10), out(64 << 10);
    std::size_t beg = 0, end = 0;
    std::int64_t body = 0;
    bool bad_byte = false;
    while (!p.is_done()) {
      std::size_t consumed = 0;
      if (beg < end) {
        p.get().body().data = out.data();
        p.get().body().size = out.size();
        boost::beast::error_code ec;
        consumed = p.put(boost::asio::const_buffer(in.data() + beg, end - beg), ec);
        beg += consumed;
        if (ec == bhttp::error::need_buffer || ec == bhttp::error::need_more) ec = {};
        ASSERT_FALSE(ec) << ec.message();
        std::size_t n = out.size() - p.get().body().size;
        bad_byte |= std::any_of(out.begin(), out.begin() + static_cast<long>(n),
                                [](char ch) { return ch != 'r'; });
        body += static_cast<std::int64_t>(n);
      }
      if (consumed == 0 && !p.is_done()) {  // needs more input
        std::copy(in.begin() + static_cast<long>(beg), in.begin() + static_cast<long>(end),
                  in.begin());
        end -= beg;
        beg = 0;
        ASSERT_LT(end, in.size());
        std::size_t n = c.conn().read(in.data() + end, in.size() - end);
        ASSERT_GT(n, 0u);
        end += n;
      }
    }
    EXPECT_TRUE(p.get().chunked());
    EXPECT_EQ(body, kTotal);
    EXPECT_FALSE(bad_byte);
    long growth_mib = (maxrss_kib() - rss_before) / 1024;
    EXPECT_LT(growth_mib, 40) << "max RSS grew by " << growth_mib << " MiB";
  });
}

TEST(Http, ChunkedAndContentLengthResponses) {
  run([] {
    http::ServeMux mux;
    mux.handle("/small", [](http::ResponseWriter& w, http::Request&) { w.write("tiny"); });
    mux.handle("/flushed", [](http::ResponseWriter& w, http::Request&) {
      w.write("part1,");
      w.flush();
      w.write("part2,");
      w.flush();
      w.write("part3");
    });
    mux.handle("/big", [](http::ResponseWriter& w, http::Request&) {
      for (int i = 0; i < 10; ++i) w.write(std::string(1000, static_cast<char>('a' + i)));
    });
    mux.handle("/declared", [](http::ResponseWriter& w, http::Request&) {
      w.header().set("Content-Length", "10000");
      for (int i = 0; i < 10; ++i) w.write(std::string(1000, 'd'));
    });
    mux.handle("/status", [](http::ResponseWriter& w, http::Request&) { w.write_header(204); });
    TestServer ts({.handler = mux.handler()});
    Client c(ts.addr());
    c.send(get("/small"));
    auto r = c.recv();
    EXPECT_EQ(r->header("content-length"), "4");
    EXPECT_FALSE(r->chunked);
    EXPECT_EQ(r->body, "tiny");

    c.send(get("/flushed"));
    r = c.recv();
    EXPECT_TRUE(r->chunked);
    EXPECT_EQ(r->body, "part1,part2,part3");

    c.send(get("/big"));
    r = c.recv();
    EXPECT_TRUE(r->chunked);
    ASSERT_EQ(r->body.size(), 10000u);
    EXPECT_EQ(r->body[0], 'a');
    EXPECT_EQ(r->body[9999], 'j');

    c.send(get("/declared"));
    r = c.recv();
    EXPECT_FALSE(r->chunked);
    EXPECT_EQ(r->header("content-length"), "10000");
    EXPECT_EQ(r->body, std::string(10000, 'd'));

    c.send(get("/status"));
    r = c.recv();
    EXPECT_EQ(r->status, 204);
    EXPECT_TRUE(r->body.empty());

    c.send("HEAD /big HTTP/1.1\r\nHost: t\r\n\r\n");
    r = c.recv(true);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->body.empty());
    c.send(get("/small"));  // the HEAD response carried no body: the stream is still in step
    EXPECT_EQ(c.recv()->body, "tiny");
  });
}

TEST(Http, RouterMatchesPatternsAnd404And405) {
  run([] {
    http::ServeMux mux;
    mux.handle("GET /users/{id}", [](http::ResponseWriter& w, http::Request& r) {
      w.write("user " + std::string(r.path_value("id")));
    });
    mux.handle("POST /users/{$}",
               [](http::ResponseWriter& w, http::Request&) { w.write("create"); });
    mux.handle("/static/",
               [](http::ResponseWriter& w, http::Request& r) { w.write("static " + r.path); });
    mux.handle("/static/special",
               [](http::ResponseWriter& w, http::Request&) { w.write("special"); });
    mux.handle("GET /files/{path...}", [](http::ResponseWriter& w, http::Request& r) {
      w.write("file " + std::string(r.path_value("path")));
    });
    mux.handle("/{$}", [](http::ResponseWriter& w, http::Request& r) {
      w.write("root q=" + r.query_value("q"));
    });
    EXPECT_THROW(mux.handle("GET /users/{other}", hello), std::invalid_argument);
    TestServer ts({.handler = mux.handler()});
    Client c(ts.addr());
    auto ask = [&](const std::string& req) {
      c.send(req);
      auto r = c.recv(req.starts_with("HEAD"));
      EXPECT_TRUE(r);
      return r.value_or(Resp{});
    };
    EXPECT_EQ(ask(get("/users/42")).body, "user 42");
    EXPECT_EQ(ask(get("/users/a%20b")).body, "user a b");
    EXPECT_EQ(ask(post("/users/", "")).body, "create");
    Resp r = ask("DELETE /users/42 HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(r.header("allow"), "GET, HEAD");
    EXPECT_EQ(ask("HEAD /users/7 HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    EXPECT_EQ(ask(get("/nope")).status, 404);
    EXPECT_EQ(ask(get("/static/css/a.css")).body, "static /static/css/a.css");
    EXPECT_EQ(ask(get("/static/special")).body, "special");
    r = ask(get("/static"));
    EXPECT_EQ(r.status, 301);
    EXPECT_EQ(r.header("location"), "/static/");
    EXPECT_EQ(ask(get("/files/a/b/c.txt")).body, "file a/b/c.txt");
    EXPECT_EQ(ask(get("/?q=x%2By+z")).body, "root q=x+y z");
    EXPECT_EQ(ask(get("/other")).status, 404);  // "/{$}" matches "/" only
  });
}

TEST(Http, HandlerExceptionGives500AndTheServerGoesOn) {
  run([] {
    http::ServeMux mux;
    mux.handle("/boom", [](http::ResponseWriter& w, http::Request&) {
      w.header().set("X-Before", "1");
      w.write("partial");  // still buffered: the 500 replaces it
      throw std::runtime_error("kaboom");
    });
    mux.handle("/ok", hello);
    mux.handle("/backend", [](http::ResponseWriter&, http::Request&) {
      // A socket error of the handler's own (not its client's connection) is a failure too.
      throw net::Error(std::errc::connection_refused, "dial tcp 127.0.0.1:1: connection refused");
    });
    TestServer ts({.handler = mux.handler()});
    Client b(ts.addr());
    b.send(get("/backend"));
    EXPECT_EQ(b.recv()->status, 500);
    Client c(ts.addr());
    c.send(get("/boom"));
    auto r = c.recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(r->header("x-before"), "");
    EXPECT_EQ(r->body.find("partial"), std::string::npos);
    EXPECT_TRUE(c.closed_by_peer());
    auto log = ts.log();
    ASSERT_EQ(log.size(), 2u);
    EXPECT_NE(log[0].find("connection refused"), std::string::npos) << log[0];
    EXPECT_NE(log[1].find("http: panic serving"), std::string::npos) << log[1];
    EXPECT_NE(log[1].find("kaboom"), std::string::npos) << log[1];

    Client c2(ts.addr());
    c2.send(get("/ok"));
    EXPECT_EQ(c2.recv()->status, 200);
  });
}

TEST(Http, GracefulShutdownFinishesInFlightRequests) {
  run([] {
    goro::Chan<std::monostate> entered(1), release;
    http::ServeMux mux;
    mux.handle("/slow", [&](http::ResponseWriter& w, http::Request&) {
      entered.send({});
      release.recv();
      w.write("finished");
    });
    mux.handle("/fast", hello);
    TestServer ts({.handler = mux.handler()});

    Client idle(ts.addr());  // an idle keep-alive connection
    idle.send(get("/fast"));
    ASSERT_EQ(idle.recv()->status, 200);
    Client busy(ts.addr());
    busy.send(get("/slow"));
    entered.recv();
    Client fresh(ts.addr());  // connected, never sends: treated as idle

    goro::Chan<bool> shut(1);
    goro::go([&] {
      ts.server().shutdown(goro::Context::background());
      shut.send(true);
    });
    EXPECT_TRUE(idle.closed_by_peer());  // idle connections are closed at once
    EXPECT_TRUE(fresh.closed_by_peer());
    EXPECT_THROW(net::dial("tcp", ts.addr()), net::Error);  // no more accepting
    EXPECT_TRUE(ts.wait_served());                          // serve threw ErrServerClosed
    EXPECT_EQ(shut.try_recv(), std::nullopt);               // the in-flight request holds it
    release.send({});
    auto r = busy.recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "finished");
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(busy.closed_by_peer());
    EXPECT_EQ(shut.recv(), true);
    net::Listener again = net::listen("tcp", "127.0.0.1:0");
    EXPECT_THROW(ts.server().serve(again), http::ErrServerClosed);
  });
}

TEST(Http, ShutdownWhoseContextEndsFirstThrowsItsError) {
  run([] {
    goro::Chan<std::monostate> entered(1), release(1);
    TestServer ts({.handler = [&](http::ResponseWriter& w, http::Request&) {
      entered.send({});
      release.recv();
      w.write("late");
    }});
    Client c(ts.addr());
    c.send(get("/"));
    entered.recv();
    auto [ctx, cancel] = goro::with_timeout(goro::Context::background(), 100ms);
    EXPECT_THROW(ts.server().shutdown(ctx), goro::DeadlineExceeded);
    cancel();
    release.send({});
    auto r = c.recv();  // the request was left alone: it still completes
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "late");
  });
}

TEST(Http, MaxConnectionsHoldsExtraClientsInTheBacklog) {
  run([] {
    TestServer ts({.handler = hello, .max_connections = 1});
    auto a = std::make_unique<Client>(ts.addr());
    a->send(get("/a"));
    ASSERT_EQ(a->recv()->status, 200);
    Client b(ts.addr());  // connects (kernel backlog) but is not accepted
    b.send(get("/b"));
    b.conn().set_read_deadline(goro::Clock::now() + 300ms);
    EXPECT_THROW(b.recv(), net::Timeout);
    b.conn().set_read_deadline({});
    a.reset();  // frees the one slot
    auto r = b.recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "hello /b\n");
  });
}

TEST(Http, ExpectContinueAndUnreadBodies) {
  run([] {
    http::ServeMux mux;
    mux.handle("/echo", [](http::ResponseWriter& w, http::Request& r) { w.write(r.read_all()); });
    mux.handle("/ignore", [](http::ResponseWriter& w, http::Request&) { w.write("ignored"); });
    TestServer ts({.handler = mux.handler()});
    Client c(ts.addr());
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    auto r = c.recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 100);
    c.send("hello");
    r = c.recv();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello");

    // A body the handler never read is drained, and the next request is served.
    c.send(post("/ignore", std::string(10000, 'x')) + get("/echo"));
    EXPECT_EQ(c.recv()->body, "ignored");
    r = c.recv();
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->body.empty());
  });
}

TEST(Http, Http10ClosesAfterTheResponse) {
  run([] {
    TestServer ts({.handler = hello});
    Client c(ts.addr());
    c.send("GET /old HTTP/1.0\r\n\r\n");
    auto r = c.recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello /old\n");
    EXPECT_EQ(r->header("content-length"), "11");
    EXPECT_TRUE(c.closed_by_peer());

    Client k(ts.addr());  // Connection: close on HTTP/1.1
    k.send(get("/x", "Connection: close\r\n"));
    EXPECT_EQ(k.recv()->header("connection"), "close");
    EXPECT_TRUE(k.closed_by_peer());
  });
}

TEST(Http, IdleKeepAliveConnectionIsClosedAfterTheIdleTimeout) {
  run([] {
    TestServer ts({.handler = hello, .idle_timeout = 200ms});
    Client c(ts.addr());
    c.send(get("/"));
    ASSERT_EQ(c.recv()->status, 200);
    auto idle_from = goro::Clock::now();  // the server's idle wait starts after this response
    EXPECT_TRUE(c.closed_by_peer());
    EXPECT_GE(goro_test::since(idle_from), 150ms);
  });
}

TEST(Http, MalformedRequestsGet400) {
  run([] {
    std::atomic<int> calls{0};
    TestServer ts({.handler = [&](http::ResponseWriter& w, http::Request& r) {
      ++calls;
      hello(w, r);
    }});
    for (std::string bad :
         {std::string("GET / HTTP/1.1\r\n\r\n"),  // no Host
          std::string("BLAH\r\n\r\n"), std::string("GET / HTTP/1.1\r\nHost t\r\n\r\n"),
          std::string("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")}) {
      Client c(ts.addr());
      c.send(bad);
      auto r = c.recv();
      ASSERT_TRUE(r) << bad;
      EXPECT_EQ(r->status, 400) << bad;
      EXPECT_TRUE(c.closed_by_peer());
    }
    EXPECT_EQ(calls.load(), 0);
  });
}

TEST(Http, ReadAndWriteTimeoutsReachTheHandlerAsNetTimeout) {
  run([] {
    goro::Chan<std::string> seen(2);
    http::ServeMux mux;
    mux.handle("/upload", [&](http::ResponseWriter&, http::Request& r) {
      try {
        r.read_all();
      } catch (const net::Timeout&) {
        seen.send("read timeout");
        throw;
      }
    });
    mux.handle("/download", [&](http::ResponseWriter& w, http::Request&) {
      std::string piece(64 << 10, 'x');
      try {
        for (;;) w.write(piece);  // the client never reads: the socket buffers fill up
      } catch (const net::Timeout&) {
        seen.send("write timeout");
        throw;
      }
    });
    TestServer ts({.handler = mux.handler(), .read_timeout = 300ms, .write_timeout = 300ms});
    Client up(ts.addr());
    up.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part");
    Client down(ts.addr());
    down.send(get("/download"));
    std::vector<std::string> got;
    for (int i = 0; i < 2; ++i) {
      goro::select(goro::on_recv(seen, [&](std::optional<std::string> s) { got.push_back(*s); }),
                   goro::on_recv(goro::after(10s), [&](auto) { got.push_back("none"); }));
    }
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::string>{"read timeout", "write timeout"}));
    EXPECT_TRUE(up.closed_by_peer());
    EXPECT_TRUE(ts.log().empty());  // the client's own connection failing is not logged
  });
}

TEST(Http, RequestContextEndsWhenTheClientHangsUpOrTheHandlerReturns) {
  run([] {
    goro::Chan<std::string> seen(4);
    goro::Chan<goro::Context> kept(1);
    http::ServeMux mux;
    mux.handle("/wait", [&](http::ResponseWriter& w, http::Request& r) {
      std::size_t which =
          goro::select(goro::on_recv(r.context().done()), goro::on_recv(goro::after(10s)));
      seen.send(which == 0 ? "cancelled" : "not cancelled");
      w.write("late");
    });
    mux.handle("/quick", [&](http::ResponseWriter& w, http::Request& r) {
      EXPECT_FALSE(r.context().cancelled());
      kept.try_send(r.context());  // the first one
      w.write(r.read_all());
    });
    TestServer ts({.handler = mux.handler()});
    {
      Client c(ts.addr());
      c.send(get("/wait"));
    }  // hangs up while the handler waits
    EXPECT_EQ(seen.recv(), "cancelled");

    Client c(ts.addr());  // pipelined requests with bodies still go through the background read
    c.send(post("/quick", "one") + post("/quick", "two"));
    EXPECT_EQ(c.recv()->body, "one");
    EXPECT_EQ(c.recv()->body, "two");
    auto ctx = kept.recv();
    ASSERT_TRUE(ctx);
    EXPECT_TRUE(ctx->cancelled());  // the handler returned
    c.send(get("/quick"));
    EXPECT_EQ(c.recv()->status, 200);
  });
}
