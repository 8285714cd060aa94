// goro::net over loopback: echo with many connections, deadlines, close from another
// goroutine (read, write, accept), half-close, peer reset without SIGPIPE, UDP, Unix
// sockets, dial errors, Context and timeouts, caller-owned fds, address errors, read_full,
// and I/O waits in the deadlock detector.
//
// A connect that hangs comes from a listener whose accept queue is full (Linux then drops
// SYNs): see FullBacklog.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "goro/net.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::eventually;

namespace net = goro::net;

namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

std::string str(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A connected TCP pair over loopback.
struct Pair {
  net::Conn client;
  net::Conn server;
};

Pair tcp_pair() {
  net::Listener ln = net::listen("tcp", "127.0.0.1:0");
  Pair p;
  p.client = net::dial("tcp", ln.addr());
  p.server = ln.accept();
  return p;
}

// Waits until some goroutine other than the caller is parked in `IO wait`.
bool someone_in_io_wait() {
  return eventually([] {
    for (const auto& g : goro::goroutines()) {
      if (g.state == "IO wait" && g.id != goro::goroutine_id()) return true;
    }
    return false;
  });
}

// A listener whose accept queue is full: a dial to it hangs until its deadline.
struct FullBacklog {
  int fd = -1;
  std::string addr;
  std::vector<net::Conn> fillers;
  FullBacklog() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
    EXPECT_EQ(::listen(fd, 0), 0);
    socklen_t len = sizeof sin;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    addr = "127.0.0.1:" + std::to_string(ntohs(sin.sin_port));
    // Fill the queue: dials succeed until one times out.
    for (int i = 0; i < 16; ++i) {
      try {
        fillers.push_back(net::dial_timeout("tcp", addr, 100ms));
      } catch (const net::Timeout&) {
        return;
      }
    }
    ADD_FAILURE() << "the accept queue never filled";
  }
  ~FullBacklog() { ::close(fd); }
};

// ---------------------------------------------------------------- echo

TEST(Net, EchoManyConcurrentConnections) {
  const int n = goro_test::kThreadSanitizer ? 100 : goro_test::kSanitized ? 300 : 1000;
  goro::run(
      [n] {
        net::Listener ln = net::listen("tcp", "127.0.0.1:0");
        goro::WaitGroup servers;
        goro::go([&] {
          for (int i = 0; i < n; ++i) {
            net::Conn c = ln.accept();
            servers.go([c = std::move(c)]() mutable {
              std::byte buf[512];
              while (std::size_t k = c.read(buf)) c.write(std::span(buf, k));
            });
          }
        });
        goro::WaitGroup clients;
        std::atomic<int> ok{0};
        for (int i = 0; i < n; ++i) {
          clients.go([&, i] {
            net::Conn c = net::dial("tcp", ln.addr());
            std::string msg(1000 + i, static_cast<char>('a' + i % 26));
            msg += std::to_string(i);
            c.write(msg);
            std::vector<std::byte> back(msg.size());
            EXPECT_EQ(net::read_full(c, back), msg.size());
            if (str(back) == msg) ok.fetch_add(1);
            c.close_write();
            std::byte extra[1];
            EXPECT_EQ(c.read(extra), 0u);  // the server saw our EOF and closed
          });
        }
        clients.wait();
        servers.wait();
        EXPECT_EQ(ok.load(), n);
      },
      {.procs = 4});
}

// ---------------------------------------------------------------- deadlines

TEST(Net, DeadlineInThePastFailsEveryReadUntilMoved) {
  goro::run([] {
    Pair p = tcp_pair();
    p.server.set_read_deadline(goro::Clock::now() - 1s);
    std::byte buf[8];
    for (int i = 0; i < 2; ++i) {
      try {
        p.server.read(buf);
        ADD_FAILURE() << "read returned";
      } catch (const net::Timeout& e) {
        EXPECT_EQ(e.code(), std::errc::timed_out);
        EXPECT_TRUE(ends_with(e.what(), "i/o timeout")) << e.what();
      }
    }
    p.client.write("hi");  // a deadline never closes the connection
    p.server.set_read_deadline({});
    EXPECT_EQ(net::read_full(p.server, std::span(buf, 2)), 2u);
    EXPECT_EQ(str(std::span(buf, 2)), "hi");
    // Writes have their own deadline.
    p.server.set_write_deadline(goro::Clock::now() - 1ms);
    EXPECT_THROW(p.server.write("x"), net::Timeout);
    p.server.set_deadline({});
    EXPECT_EQ(p.server.write("x"), 1u);
  });
}

TEST(Net, DeadlineMovedWhileWaitingAppliesToThatWait) {
  goro::run([] {
    Pair p = tcp_pair();
    p.server.set_read_deadline(goro::Clock::now() + 1h);
    goro::Chan<bool> timed_out(1);
    goro::go([&] {
      std::byte buf[8];
      try {
        p.server.read(buf);
        timed_out.send(false);
      } catch (const net::Timeout&) {
        timed_out.send(true);
      }
    });
    ASSERT_TRUE(someone_in_io_wait());
    const auto start = goro::Clock::now();
    p.server.set_read_deadline(goro::Clock::now() + 20ms);
    EXPECT_EQ(timed_out.recv(), true);
    EXPECT_LT(goro_test::since(start), 30s);
  });
}

TEST(Net, DeadlineClearedWhileWaitingLetsTheReadFinish) {
  goro::run([] {
    Pair p = tcp_pair();
    const auto old_deadline = goro::Clock::now() + 300ms;
    p.server.set_read_deadline(old_deadline);
    goro::Chan<std::string> got(1);
    goro::go([&] {
      std::byte buf[8];
      try {
        got.send(str(std::span(buf, p.server.read(buf))));
      } catch (const net::Timeout&) {
        got.send("timeout");
      }
    });
    ASSERT_TRUE(someone_in_io_wait());
    p.server.set_read_deadline({});
    // A very slow machine (a sanitizer) may get here only after the old deadline.
    const bool cleared_in_time = goro::Clock::now() < old_deadline;
    goro::sleep(old_deadline - goro::Clock::now() + 100ms);  // the scenario: past the old one
    p.client.write("late");
    const std::string result = *got.recv();
    if (cleared_in_time) {
      EXPECT_EQ(result, "late");
    }
  });
}

TEST(Net, ListenerDeadline) {
  goro::run([] {
    net::Listener ln = net::listen("tcp", "127.0.0.1:0");
    const auto start = goro::Clock::now();
    ln.set_deadline(start + 30ms);
    EXPECT_THROW(ln.accept(), net::Timeout);
    EXPECT_GE(goro_test::since(start), 30ms);
    ln.set_deadline({});
    net::Conn c = net::dial("tcp", ln.addr());
    net::Conn s = ln.accept();
    EXPECT_EQ(s.remote_addr(), c.local_addr());
    EXPECT_EQ(s.local_addr(), c.remote_addr());
  });
}

// ---------------------------------------------------------------- close

void expect_closed(const std::function<void()>& op, const char* what) {
  try {
    op();
    ADD_FAILURE() << what << " returned";
  } catch (const net::Closed& e) {
    EXPECT_EQ(e.code(), std::errc::bad_file_descriptor) << what;
    EXPECT_TRUE(ends_with(e.what(), "use of closed network connection")) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << " threw " << e.what();
  }
}

TEST(Net, CloseFromAnotherGoroutineWakesRead) {
  goro::run(
      [] {
        Pair p = tcp_pair();
        goro::WaitGroup wg;
        wg.go([&] {
          expect_closed(
              [&] {
                std::byte buf[8];
                p.server.read(buf);
              },
              "read");
        });
        ASSERT_TRUE(someone_in_io_wait());
        const std::string laddr = p.server.local_addr();
        const std::string raddr = p.server.remote_addr();
        p.server.close();
        wg.wait();
        EXPECT_FALSE(p.server);
        EXPECT_EQ(p.server.fd(), -1);
        EXPECT_EQ(p.server.local_addr(), laddr);
        EXPECT_EQ(p.server.remote_addr(), raddr);
        p.server.close();  // idempotent
        expect_closed([&] { p.server.write("x"); }, "write after close");
        expect_closed([&] { p.server.set_deadline({}); }, "set_deadline after close");
        expect_closed([&] { p.server.set_read_deadline({}); }, "set_read_deadline after close");
        expect_closed([&] { p.server.close_write(); }, "close_write after close");
        std::byte b[1];
        EXPECT_EQ(p.client.read(b), 0u);  // the peer sees end of stream
      },
      {.procs = 2});
}

TEST(Net, CloseFromAnotherGoroutineWakesWrite) {
  goro::run(
      [] {
        Pair p = tcp_pair();
        int small = 4096;
        ::setsockopt(p.client.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        goro::WaitGroup wg;
        wg.go([&] {
          const std::string chunk(1 << 20, 'x');
          expect_closed(
              [&] {
                for (;;) p.client.write(chunk);  // the peer never reads: fills up and parks
              },
              "write");
        });
        ASSERT_TRUE(someone_in_io_wait());
        p.client.close();
        wg.wait();
        EXPECT_EQ(p.client.fd(), -1);
      },
      {.procs = 2});
}

TEST(Net, CloseFromAnotherGoroutineWakesAccept) {
  goro::run(
      [] {
        net::Listener ln = net::listen("tcp", ":0");
        goro::WaitGroup wg;
        wg.go([&] { expect_closed([&] { ln.accept(); }, "accept"); });
        ASSERT_TRUE(someone_in_io_wait());
        const std::string addr = ln.addr();
        ln.close();
        wg.wait();
        EXPECT_EQ(ln.addr(), addr);
        EXPECT_FALSE(ln);
        expect_closed([&] { ln.accept(); }, "accept after close");
        expect_closed([&] { ln.set_deadline({}); }, "set_deadline after close");
        EXPECT_THROW(net::dial("tcp", addr), net::Error);  // nobody listens any more
      },
      {.procs = 2});
}

TEST(Net, CloseRacesWithReadsAndWrites) {
  goro::run(
      [] {
        for (int round = 0; round < goro_test::scaled(200); ++round) {
          Pair p = tcp_pair();
          goro::WaitGroup wg;
          std::atomic<int> outcomes{0};
          wg.go([&] {  // reads until end of stream, Closed, or the peer's reset
            std::byte buf[256];
            try {
              while (p.server.read(buf) != 0) {
              }
            } catch (const net::Error&) {
            }
            outcomes.fetch_add(1);
          });
          wg.go([&] {  // writes until the connection goes away
            try {
              for (;;) p.server.write("0123456789abcdef");
            } catch (const net::Error&) {  // Closed, or the peer's reset
            }
            outcomes.fetch_add(1);
          });
          wg.go([&] {
            for (int i = 0; i < round % 7; ++i) goro::yield();
            p.server.close();
          });
          if (round % 2 == 0) p.client.close();
          wg.wait();
          EXPECT_EQ(outcomes.load(), 2);
          EXPECT_EQ(p.server.fd(), -1);
        }
      },
      {.procs = 4});
}

TEST(Net, ConcurrentWritesDoNotInterleave) {
  goro::run(
      [] {
        Pair p = tcp_pair();
        constexpr std::size_t kBlock = 256 * 1024;
        constexpr int kWriters = 4;
        goro::WaitGroup wg;
        for (int w = 0; w < kWriters; ++w) {
          wg.go([&, w] {
            const std::string block(kBlock, static_cast<char>('a' + w));
            for (int i = 0; i < 4; ++i) p.client.write(block);
          });
        }
        goro::go([&] {
          wg.wait();
          p.client.close_write();
        });
        std::vector<std::byte> block(kBlock);
        int blocks = 0;
        while (net::read_full(p.server, block) == kBlock) {
          const std::string got = str(block);
          EXPECT_EQ(got.find_first_not_of(got[0]), std::string::npos) << "block " << blocks;
          ++blocks;
        }
        EXPECT_EQ(blocks, 4 * kWriters);
      },
      {.procs = 4});
}

TEST(Net, MovedFromObjectsAreEmpty) {
  goro::run([] {
    Pair p = tcp_pair();
    net::Conn c = std::move(p.client);
    EXPECT_FALSE(p.client);
    EXPECT_EQ(p.client.fd(), -1);
    EXPECT_TRUE(c);
    EXPECT_GE(c.fd(), 0);
    expect_closed([&] { p.client.write("x"); }, "write on moved-from");
    c = std::move(p.server);  // closes the old client
    EXPECT_TRUE(c);
  });
}

// ---------------------------------------------------------------- half-close, reset

TEST(Net, HalfCloseLetsThePeerReplyAfterEndOfStream) {
  goro::run([] {
    Pair p = tcp_pair();
    goro::go([&] {
      std::string in;
      std::byte buf[64];
      while (std::size_t k = p.server.read(buf)) in += str(std::span(buf, k));
      p.server.write("got " + in);
      p.server.close();
    });
    p.client.write("request");
    p.client.close_write();
    std::string reply;
    std::byte buf[64];
    while (std::size_t k = p.client.read(buf)) reply += str(std::span(buf, k));
    EXPECT_EQ(reply, "got request");
  });
}

TEST(Net, CloseReadMakesReadsReturnEndOfStream) {
  goro::run([] {
    Pair p = tcp_pair();
    p.server.close_read();
    std::byte buf[8];
    EXPECT_EQ(p.server.read(buf), 0u);
    p.server.write("still writes");
    std::vector<std::byte> got(12);
    EXPECT_EQ(net::read_full(p.client, got), 12u);
  });
}

TEST(Net, PeerResetIsAnErrorNotSigpipe) {
  goro::run([] {
    Pair p = tcp_pair();
    linger lg{1, 0};  // close with RST
    ASSERT_EQ(::setsockopt(p.server.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    p.server.close();
    const std::string chunk(64 * 1024, 'x');
    try {
      for (int i = 0; i < 1000; ++i) p.client.write(chunk);
      ADD_FAILURE() << "writes to a reset peer kept succeeding";
    } catch (const net::Timeout&) {
      ADD_FAILURE() << "timeout";
    } catch (const net::Closed&) {
      ADD_FAILURE() << "closed";
    } catch (const net::Error& e) {
      EXPECT_TRUE(e.code().value() == EPIPE || e.code().value() == ECONNRESET) << e.what();
      EXPECT_NE(std::string(e.what()).find("write tcp"), std::string::npos) << e.what();
    }
  });
}

// ---------------------------------------------------------------- UDP

TEST(Net, UdpRoundTrip) {
  goro::run([] {
    net::PacketConn a = net::listen_packet("udp", "127.0.0.1:0");
    net::PacketConn b = net::listen_packet("udp4", "127.0.0.1:0");
    goro::go([&] {
      std::byte buf[64];
      auto [n, from] = b.read_from(buf);
      b.write_to(std::span(buf, n), from);  // echo
    });
    EXPECT_EQ(a.write_to(bytes("ping"), b.local_addr()), 4u);
    a.set_read_deadline(goro::Clock::now() + 10s);
    std::byte buf[64];
    auto [n, from] = a.read_from(buf);
    EXPECT_EQ(str(std::span(buf, n)), "ping");
    EXPECT_EQ(from, b.local_addr());
    a.close();
    a.close();
    EXPECT_EQ(a.fd(), -1);
    expect_closed([&] { a.read_from(buf); }, "read_from after close");
    expect_closed([&] { a.write_to(bytes("x"), b.local_addr()); }, "write_to after close");
  });
}

TEST(Net, UdpDualStackTalksToIpv4) {
  goro::run([] {
    net::PacketConn any = net::listen_packet("udp", ":0");
    net::PacketConn v4 = net::listen_packet("udp4", "127.0.0.1:0");
    const std::string port = any.local_addr().substr(any.local_addr().rfind(':'));
    v4.write_to(bytes("hello"), "127.0.0.1" + port);
    std::byte buf[16];
    auto [n, from] = any.read_from(buf);
    EXPECT_EQ(str(std::span(buf, n)), "hello");
    EXPECT_EQ(from, v4.local_addr());  // v4-mapped addresses print as IPv4
    any.write_to(bytes("back"), from);
    auto [m, from2] = v4.read_from(buf);
    EXPECT_EQ(str(std::span(buf, m)), "back");
    (void)from2;
  });
}

TEST(Net, UdpReadDeadline) {
  goro::run([] {
    net::PacketConn a = net::listen_packet("udp", "127.0.0.1:0");
    a.set_deadline(goro::Clock::now() + 10ms);
    std::byte buf[4];
    EXPECT_THROW(a.read_from(buf), net::Timeout);
  });
}

// ---------------------------------------------------------------- Unix sockets

TEST(Net, UnixSocketEchoAndFileRemovedOnClose) {
  goro::run([] {
    char dir[] = "/tmp/goro-net-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    const std::string path = std::string(dir) + "/sock";
    {
      net::Listener ln = net::listen("unix", path);
      EXPECT_EQ(ln.addr(), path);
      EXPECT_EQ(::access(path.c_str(), F_OK), 0);
      EXPECT_THROW(net::listen("unix", path), net::Error);  // in use
      goro::go([&] {
        net::Conn c = ln.accept();
        EXPECT_EQ(c.local_addr(), path);
        std::byte buf[16];
        std::size_t k = c.read(buf);
        c.write(std::span(buf, k));
      });
      net::Conn c = net::dial("unix", path);
      EXPECT_EQ(c.remote_addr(), path);
      c.write("unix!");
      std::byte buf[5];
      EXPECT_EQ(net::read_full(c, buf), 5u);
      EXPECT_EQ(str(buf), "unix!");
      ln.close();
      EXPECT_NE(::access(path.c_str(), F_OK), 0);  // the socket file is gone
      EXPECT_EQ(ln.addr(), path);
    }
    // The destructor removes it too.
    { net::Listener ln = net::listen("unix", path); }
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
    try {
      net::dial("unix", path);
      ADD_FAILURE() << "dial to a removed socket connected";
    } catch (const net::Error& e) {
      EXPECT_EQ(e.code().value(), ENOENT) << e.what();
    }
    ::rmdir(dir);
    // Linux's abstract namespace: no file at all.
    const std::string abstract = "@goro-net-test-" + std::to_string(::getpid());
    net::Listener aln = net::listen("unix", abstract);
    EXPECT_EQ(aln.addr(), abstract);
    net::Conn ac = net::dial("unix", abstract);
    net::Conn as = aln.accept();
    EXPECT_EQ(as.local_addr(), abstract);
    ac.write("@");
    std::byte b[1];
    EXPECT_EQ(as.read(b), 1u);
  });
}

// ---------------------------------------------------------------- dial

TEST(Net, DialClosedPortIsConnectionRefused) {
  goro::run([] {
    std::string addr;
    {
      net::Listener ln = net::listen("tcp4", "127.0.0.1:0");
      addr = ln.addr();
    }
    try {
      net::dial("tcp", addr);
      ADD_FAILURE() << "connected";
    } catch (const net::Timeout&) {
      ADD_FAILURE() << "timeout";
    } catch (const net::Error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED);
      EXPECT_NE(std::string(e.what()).find(addr), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("connection refused"), std::string::npos) << e.what();
    }
  });
}

TEST(Net, DialEmptyHostIsLoopbackAndIpv6Works) {
  goro::run([] {
    net::Listener ln = net::listen("tcp", ":0");
    const std::string port = ln.addr().substr(ln.addr().rfind(':'));
    net::Conn c = net::dial("tcp", port);
    net::Conn s = ln.accept();
    EXPECT_EQ(s.remote_addr(), c.local_addr());
    // The listener's own address ("[::]:p" or "0.0.0.0:p") dials the local host, as in Go.
    net::Conn again = net::dial("tcp", ln.addr());
    EXPECT_TRUE(ln.accept());
    net::Listener ln6 = [] {
      try {
        return net::listen("tcp6", "[::1]:0");
      } catch (const net::Error&) {
        return net::Listener();  // no IPv6 loopback here
      }
    }();
    if (ln6) {
      EXPECT_EQ(ln6.addr().rfind("[::1]:", 0), 0u) << ln6.addr();
      net::Conn c6 = net::dial("tcp6", ln6.addr());
      EXPECT_EQ(c6.remote_addr(), ln6.addr());
    }
    net::Conn byname = net::dial("tcp", "localhost" + port);  // resolved without parking
    EXPECT_TRUE(byname);
  });
}

TEST(Net, DialCancelledContextThrowsCanceled) {
  goro::run([] {
    net::Listener ln = net::listen("tcp", "127.0.0.1:0");
    auto [ctx, cancel] = goro::with_cancel(goro::Context::background());
    cancel();
    EXPECT_THROW(net::dial(ctx, "tcp", ln.addr()), goro::Canceled);
    // A context cancelled while the connect hangs.
    FullBacklog full;
    auto [ctx2, cancel2] = goro::with_cancel(goro::Context::background());
    goro::go([cancel = cancel2] {  // (clang 14 cannot capture a structured binding)
      EXPECT_TRUE(someone_in_io_wait());
      cancel();
    });
    EXPECT_THROW(net::dial(ctx2, "tcp", full.addr), goro::Canceled);
    // A live context does not get in the way.
    auto [ctx3, cancel3] = goro::with_timeout(goro::Context::background(), 1h);
    net::Conn c = net::dial(ctx3, "tcp", ln.addr());
    EXPECT_TRUE(c);
    cancel3();
    c.write("x");  // the watcher's end did not evict the connected socket
  });
}

TEST(Net, DialExpiringContextThrowsDeadlineExceeded) {
  goro::run([] {
    FullBacklog full;
    const auto start = goro::Clock::now();
    auto [ctx, cancel] = goro::with_timeout(goro::Context::background(), 50ms);
    EXPECT_THROW(net::dial(ctx, "tcp", full.addr), goro::DeadlineExceeded);
    EXPECT_GE(goro_test::since(start), 50ms);
    cancel();
  });
}

TEST(Net, DialTimeout) {
  goro::run([] {
    FullBacklog full;
    const auto start = goro::Clock::now();
    try {
      net::dial_timeout("tcp", full.addr, 50ms);
      ADD_FAILURE() << "connected";
    } catch (const net::Timeout& e) {
      EXPECT_EQ(e.code(), std::errc::timed_out);
      EXPECT_EQ(std::string(e.what()), "dial tcp " + full.addr + ": i/o timeout");
    }
    EXPECT_GE(goro_test::since(start), 50ms);
    net::Listener ln = net::listen("tcp", "127.0.0.1:0");
    EXPECT_TRUE(net::dial_timeout("tcp", ln.addr(), 0s));  // <= 0: no timeout
    EXPECT_TRUE(net::dial_timeout("tcp", ln.addr(), -1s));
    EXPECT_TRUE(net::dial_timeout("tcp", ln.addr(), 10s));
  });
}

// ---------------------------------------------------------------- caller-owned fds

TEST(Net, WaitReadableOnAPipeWhoseNumberIsReused) {
  goro::run(
      [] {
        for (int round = 0; round < 3; ++round) {
          int fds[2];
          ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
          EXPECT_THROW(net::wait_readable(fds[0], goro::Clock::now() + 10ms), net::Timeout);
          net::wait_writable(fds[1]);  // an empty pipe is writable
          if (round == 0) {            // epoll cannot watch a regular file
            char name[] = "/tmp/goro-net-file-XXXXXX";
            const int file = ::mkstemp(name);
            ASSERT_GE(file, 0);
            ::unlink(name);
            try {
              net::wait_readable(file);
              ADD_FAILURE() << "waited on a regular file";
            } catch (const net::Error& e) {
              EXPECT_EQ(e.code().value(), EPERM) << e.what();
            }
            ::close(file);
          }
          goro::Chan<int> go_on;
          goro::go([&] {
            go_on.recv();
            char c = 'r';
            EXPECT_EQ(::write(fds[1], &c, 1), 1);
          });
          go_on.send(1);
          net::wait_readable(fds[0], goro::Clock::now() + 10s);
          char c = 0;
          EXPECT_EQ(::read(fds[0], &c, 1), 1);
          EXPECT_EQ(c, 'r');
          ::close(fds[0]);  // the numbers come back next round
          ::close(fds[1]);
        }
      },
      {.procs = 2});
}

// ---------------------------------------------------------------- address errors

TEST(Net, MalformedAddressesAndUnknownNetworks) {
  goro::run([] {
    struct Case {
      const char* network;
      const char* address;
      const char* text;
    };
    const Case cases[] = {
        {"tcp", "127.0.0.1", "address 127.0.0.1: missing port in address"},
        {"tcp", "[::1", "address [::1: missing ']' in address"},
        {"tcp", "1:2:3", "address 1:2:3: too many colons in address"},
        {"tcp", "[::1]80", "address [::1]80: missing port in address"},
        {"tcp", "127.0.0.1:99999", "address 127.0.0.1:99999: invalid port"},
        {"tcp4", "[::1]:80", "no suitable address found"},
        {"tcp", "no-such-host.invalid:80", "lookup no-such-host.invalid"},
    };
    for (const Case& c : cases) {
      for (bool listening : {false, true}) {
        try {
          if (listening) {
            net::listen(c.network, c.address);
          } else {
            net::dial(c.network, c.address);
          }
          ADD_FAILURE() << c.address << " accepted";
        } catch (const net::Error& e) {
          EXPECT_NE(std::string(e.what()).find(c.text), std::string::npos)
              << c.address << ": " << e.what();
        }
      }
    }
    const auto unknown = [](auto f, const std::string& net_name) {
      try {
        f();
        ADD_FAILURE() << net_name << " accepted";
      } catch (const net::Error& e) {
        EXPECT_EQ(std::string(e.what()), "unknown network \"" + net_name + "\"");
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
      }
    };
    unknown([] { net::dial("tcp5", "127.0.0.1:80"); }, "tcp5");
    unknown([] { net::listen("udp", ":0"); }, "udp");
    unknown([] { net::listen_packet("tcp", ":0"); }, "tcp");
    unknown([] { net::dial("", ":80"); }, "");
    net::PacketConn pc = net::listen_packet("udp", "127.0.0.1:0");
    EXPECT_THROW(pc.write_to(bytes("x"), "nope"), net::Error);
  });
}

// ---------------------------------------------------------------- read_full

TEST(Net, ReadFullEndOfStreamCases) {
  goro::run([] {
    {
      Pair p = tcp_pair();
      p.client.write("abcdef");
      std::byte buf[6];
      EXPECT_EQ(net::read_full(p.server, buf), 6u);
      EXPECT_EQ(str(buf), "abcdef");
      p.client.close();
      EXPECT_EQ(net::read_full(p.server, buf), 0u);  // EOF before the first byte
    }
    {
      Pair p = tcp_pair();
      p.client.write("abc");
      p.client.close();
      std::byte buf[6];
      try {
        net::read_full(p.server, buf);
        ADD_FAILURE() << "returned";
      } catch (const net::Error& e) {
        EXPECT_STREQ(e.what(), "unexpected EOF");
      }
    }
  });
}

// ---------------------------------------------------------------- the deadlock detector

const goro::Options kRaise{.procs = 2, .on_fatal = goro::OnFatal::raise};

TEST(Net, AllInIoWaitIsNotADeadlock) {
  // Main parks in accept (no deadline, no other goroutine, no timer); a plain thread that
  // goro knows nothing about connects later.
  std::string result;
  EXPECT_NO_THROW(goro::run(
      [&] {
        net::Listener ln = net::listen("tcp", "127.0.0.1:0");
        const std::string addr = ln.addr();
        const int port = std::stoi(addr.substr(addr.rfind(':') + 1));
        std::thread outside([port] {
          std::this_thread::sleep_for(100ms);
          const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          sockaddr_in sin{};
          sin.sin_family = AF_INET;
          sin.sin_port = htons(static_cast<std::uint16_t>(port));
          sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          ::connect(s, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
          ::write(s, "outside", 7);
          ::close(s);
        });
        net::Conn c = ln.accept();
        std::byte buf[7];
        const std::size_t n = net::read_full(c, buf);
        result = std::to_string(n) + str(buf);
        outside.join();
      },
      kRaise));
  EXPECT_EQ(result, "7outside");
}

TEST(Net, AllBlockedOnChannelsIsStillADeadlock) {
  // Owned by the test's frame: the abandoned main goroutine never destroys its locals.
  goro::Chan<int> never(nullptr);
  net::Listener ln;
  try {
    goro::run(
        [&] {
          ln = net::listen("tcp", "127.0.0.1:0");  // the poller exists
          ln.close();
          never = goro::Chan<int>();
          never.recv();
        },
        kRaise);
    ADD_FAILURE() << "run returned";
  } catch (const goro::Deadlock& d) {
    EXPECT_NE(std::string(d.what()).find("all goroutines are asleep"), std::string::npos);
  }
}

}  // namespace
