// goro net: Go's net package (TCP, UDP and Unix sockets) on the runtime's poller.
//
//   goro::net::Listener ln = goro::net::listen("tcp", "127.0.0.1:0");
//   goro::go([&ln] {                                  // an echo server
//     for (;;) {
//       goro::net::Conn c = ln.accept();              // parks this goroutine, not the worker
//       goro::go([c = std::move(c)]() mutable {
//         std::byte buf[4096];
//         while (std::size_t n = c.read(buf)) c.write(std::span(buf, n));
//       });
//     }
//   });
//   goro::net::Conn c = goro::net::dial("tcp", ln.addr());
//   c.set_read_deadline(goro::Clock::now() + 1s);     // read() throws Timeout past it
//   c.write("ping");
//
// Every call that waits parks the calling goroutine (wait reason `IO wait`); the poller
// wakes it. Sockets are non-blocking and close-on-exec; writes never raise SIGPIPE.
// close() may be called from any goroutine while others are parked on the object: they
// throw Closed. Failures throw Error (code() is the errno); a passed deadline throws
// Timeout; a closed object throws Closed.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "goro/context.hpp"
#include "goro/time.hpp"

namespace goro {

namespace detail {
struct NetFd;  // src/net_fd.hpp
}

namespace net {

// Any failed socket call (code() is its errno), a malformed address or unknown network
// (std::errc::invalid_argument), a failed host lookup (code() in resolver_category()).
// what() is exactly the text given, Go-style: "dial tcp 127.0.0.1:1: connect: connection
// refused".
struct Error : std::system_error {
  Error(std::error_code ec, const std::string& what);
  Error(std::errc ec, const std::string& what) : Error(std::make_error_code(ec), what) {}
  // A failure with no errno behind it (io.ErrUnexpectedEOF): code() is std::errc::io_error.
  explicit Error(const std::string& what) : Error(std::errc::io_error, what) {}
  const char* what() const noexcept override;

 private:
  std::shared_ptr<const std::string> what_;  // shared: copying an exception must not throw
};
// A deadline passed. code() is std::errc::timed_out; what() ends with "i/o timeout".
struct Timeout : Error {
  // context: "read tcp 127.0.0.1:5000->127.0.0.1:41234", or empty.
  explicit Timeout(const std::string& context = {});
};
// The object was closed. code() is std::errc::bad_file_descriptor; what() ends with
// "use of closed network connection".
struct Closed : Error {
  explicit Closed(const std::string& context = {});
};
// The error category of failed host lookups (getaddrinfo's EAI_* codes).
const std::error_category& resolver_category() noexcept;

// A connected stream socket (TCP or Unix). Move-only; the destructor closes it.
class Conn {
 public:
  Conn() noexcept = default;  // empty: operator bool is false, every operation throws Closed
  ~Conn();
  Conn(Conn&& other) noexcept : fd_(std::exchange(other.fd_, nullptr)) {}
  Conn& operator=(Conn&& other) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Parks until at least one byte arrived; returns how many were read, 0 at end of stream
  // (or for an empty buf).
  std::size_t read(std::span<std::byte> buf) { return read(buf.data(), buf.size()); }
  std::size_t read(void* data, std::size_t n);
  // Parks until all of buf is written and returns its size, or throws (a peer that went
  // away is an Error with EPIPE or ECONNRESET). Concurrent writes do not interleave.
  std::size_t write(std::span<const std::byte> buf) { return write(buf.data(), buf.size()); }
  std::size_t write(std::string_view s) { return write(s.data(), s.size()); }
  std::size_t write(const void* data, std::size_t n);
  // Idempotent; wakes every goroutine parked on this Conn (they throw Closed) and returns
  // once none is using it any more, so the Conn may be destroyed right after.
  void close();
  void close_write();  // shutdown(SHUT_WR): the peer reads end of stream
  void close_read();   // shutdown(SHUT_RD)
  // Absolute deadlines (Go's SetDeadline); Clock::time_point{} = none. A deadline already
  // past makes the waiting call and every later one throw Timeout until it is moved;
  // moving it applies to a call already waiting. A deadline never closes the connection.
  void set_deadline(Clock::time_point t);
  void set_read_deadline(Clock::time_point t);
  void set_write_deadline(Clock::time_point t);
  // "127.0.0.1:8080", "[::1]:8080" or the Unix socket path; kept after close().
  std::string local_addr() const;
  std::string remote_addr() const;
  int fd() const;  // for setsockopt; still owned by the Conn; -1 once closed or moved from
  explicit operator bool() const;  // false once moved from or closed

  explicit Conn(detail::NetFd* fd) noexcept : fd_(fd) {}  // internal

 private:
  detail::NetFd* fd_ = nullptr;
};

// A listening stream socket. Move-only; the destructor closes it.
class Listener {
 public:
  Listener() noexcept = default;
  ~Listener();
  Listener(Listener&& other) noexcept : fd_(std::exchange(other.fd_, nullptr)) {}
  Listener& operator=(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  Conn accept();  // parks until a connection arrives
  // Idempotent; wakes a goroutine parked in accept (it throws Closed). A Unix listener
  // removes its socket file.
  void close();
  // Go's TCPListener.SetDeadline: accept throws Timeout past t; Clock::time_point{} = none.
  void set_deadline(Clock::time_point t);
  // The bound address with its port resolved (":0" -> "[::]:41234"), or the Unix path.
  std::string addr() const;
  int fd() const;  // -1 once closed or moved from
  explicit operator bool() const;

  explicit Listener(detail::NetFd* fd) noexcept : fd_(fd) {}  // internal

 private:
  detail::NetFd* fd_ = nullptr;
};

// A UDP socket. Move-only; the destructor closes it.
class PacketConn {
 public:
  PacketConn() noexcept = default;
  ~PacketConn();
  PacketConn(PacketConn&& other) noexcept : fd_(std::exchange(other.fd_, nullptr)) {}
  PacketConn& operator=(PacketConn&& other) noexcept;
  PacketConn(const PacketConn&) = delete;
  PacketConn& operator=(const PacketConn&) = delete;

  // Parks until a datagram arrives; returns its size (truncated to buf) and its sender.
  std::pair<std::size_t, std::string> read_from(std::span<std::byte> buf);
  // Sends one datagram to address ("host:port"); returns buf.size().
  std::size_t write_to(std::span<const std::byte> buf, std::string_view address);
  void close();  // idempotent, like Conn::close
  void set_deadline(Clock::time_point t);
  void set_read_deadline(Clock::time_point t);
  void set_write_deadline(Clock::time_point t);
  std::string local_addr() const;
  int fd() const;  // -1 once closed or moved from
  explicit operator bool() const;

  explicit PacketConn(detail::NetFd* fd) noexcept : fd_(fd) {}  // internal

 private:
  detail::NetFd* fd_ = nullptr;
};

// network: "tcp", "tcp4", "tcp6" or "unix". address: "host:port", "[v6addr]:port", ":port"
// (every interface) or a Unix socket path. Sets SO_REUSEADDR.
Listener listen(std::string_view network, std::string_view address);
// network: "udp", "udp4" or "udp6".
PacketConn listen_packet(std::string_view network, std::string_view address);
// Connects to address (":port" is the local host); a host name is resolved without
// parking a worker and each of its addresses is tried in turn until one connects.
Conn dial(std::string_view network, std::string_view address);
// As dial; if ctx ends first, throws ctx's error (goro::Canceled or goro::DeadlineExceeded).
Conn dial(const Context& ctx, std::string_view network, std::string_view address);
// As dial, throwing Timeout once timeout has passed; timeout <= 0: no timeout.
Conn dial_timeout(std::string_view network, std::string_view address, Clock::duration timeout);

// io.ReadFull: reads until buf is full and returns buf.size(). End of stream before the
// first byte returns 0; end of stream after some bytes throws Error("unexpected EOF").
std::size_t read_full(Conn& c, std::span<std::byte> buf);

// Park until a non-blocking fd the caller owns (libpq, hiredis, a pipe) is readable or
// writable; throw Timeout once deadline (Clock::time_point{} = none) passes. The fd stays
// the caller's: it may be closed afterwards and its number reused. Two goroutines waiting
// on one fd in the same direction at once is undefined.
void wait_readable(int fd, Clock::time_point deadline = {});
void wait_writable(int fd, Clock::time_point deadline = {});

}  // namespace net
}  // namespace goro
