// goro internal: the socket behind a net::Conn, Listener or PacketConn (Go's poll.FD with
// its fdMutex), and the address helpers of net_addr.cpp.
//
// Lifetime of a NetFd: created with an open non-blocking socket registered with the poller
// (pd); owned by exactly one public object (Conn, ...), which deletes it in its destructor
// after close(). The socket itself is closed by whoever drops the last reference once the
// closing bit is set (Go's fdMutex decref -> destroy):
//  - state = kClosing bit | number of operations in flight. An operation takes a reference
//    (acquire) before it touches sysfd or pd and drops it when done; acquire fails once
//    kClosing is set (the operation throws Closed).
//  - close() sets kClosing and takes a reference in one CAS (only one close wins), evicts pd
//    (parked goroutines wake with PollResult::closed and drop their references), then drops
//    its own reference. The one that brings the count to zero calls poll_close, ::close and
//    signals `closed` — so no read() or write() can ever run on a closed (or reused) fd
//    number. A closer inside a goroutine waits for that signal: once close() returns nobody
//    touches the NetFd, and its owner may delete it.
//  - rmu/wmu serialise the operations of one direction (the poller has one waiter slot per
//    direction; Go serialises them the same way). They are taken after the reference, so a
//    goroutine queued on them is counted and woken (through the holder's Closed) by close.
//  - sysfd, pd, network and the address strings never change after construction; they are
//    read after close (addresses) or under a reference (sysfd, pd). `closed` is written by
//    the winning closer before it drops its reference and read by the last one out, which
//    synchronises with it through the state word.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "goro/chan.hpp"
#include "goro/net.hpp"
#include "goro/sync.hpp"
#include "netpoll.hpp"

namespace goro::detail {

struct NetFd {
  static constexpr std::uint64_t kClosing = std::uint64_t{1} << 63;
  // Set by the last one out after the socket is closed, as its last touch of the NetFd.
  static constexpr std::uint64_t kDone = std::uint64_t{1} << 62;
  static constexpr std::uint64_t kRefs = kDone - 1;

  NetFd(int fd, PollDesc* p, std::string net, std::string l, std::string r)
      : sysfd(fd), pd(p), network(std::move(net)), laddr(std::move(l)), raddr(std::move(r)) {}

  const int sysfd;
  PollDesc* const pd;
  const std::string network;  // "tcp", "tcp6", "unix", "udp", ... (for error texts)
  const std::string laddr;
  const std::string raddr;
  std::string unlink_path;  // a Unix listener's socket file; set before the NetFd is shared
  int family = AF_UNSPEC;   // a PacketConn's address family; set before the NetFd is shared
  std::atomic<std::uint64_t> state{0};
  Chan<std::monostate> closed{nullptr};  // see the header comment
  Mutex rmu;
  Mutex wmu;

  bool is_closing() const noexcept { return state.load(std::memory_order_acquire) & kClosing; }
};

// Takes a reference; false once the fd is closing.
bool netfd_acquire(NetFd* f) noexcept;
// Drops a reference; the last one out after close closes the socket.
void netfd_release(NetFd* f) noexcept;
// The close protocol above; idempotent. Returns once the socket is closed when called in a
// goroutine (elsewhere, possibly before the operations in flight have finished). The call
// that wins runs before(f) first (a Unix listener removes its file). Returns whether this
// call closed f.
bool netfd_close(NetFd* f, void (*before)(NetFd*) = nullptr) noexcept;
// Closes f and deletes it unless goroutines still hold references (close called outside
// a goroutine while operations were in flight: leaked rather than freed under them).
void netfd_free(NetFd* f) noexcept;

// ---- addresses (net_addr.cpp) ----

enum class NetKind : std::uint8_t { tcp, udp, unix_stream };

struct Network {
  NetKind kind;
  int family;  // AF_UNSPEC ("tcp", "udp"), AF_INET, AF_INET6 or AF_UNIX
  std::string name;
};

// Parses "tcp", "tcp4", "tcp6", "udp", ..., "unix"; throws net::Error(`unknown network
// "x"`) for anything else or for a kind not in `allowed`.
Network parse_network(std::string_view network, std::initializer_list<NetKind> allowed);

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const noexcept { return ss.ss_family; }
  const sockaddr* sa() const noexcept { return reinterpret_cast<const sockaddr*>(&ss); }
};

// The addresses to try for `address` on `net` (op is "dial", "listen" or "write", for error
// texts). An empty host is every interface for listen (the dual-stack [::] where the kernel
// supports it, as Go), the loopback for dial. Host names go through getaddrinfo inside
// goro::blocking. Throws net::Error naming the address when it is malformed or unresolvable.
std::vector<SockAddr> resolve(const Network& net, std::string_view address, std::string_view op);
// A Unix socket path ("@name" is Linux's abstract namespace).
SockAddr unix_addr(const Network& net, std::string_view path, std::string_view op);

// "1.2.3.4:80", "[::1]:80" (a v4-mapped v6 address prints as v4), a Unix path or "".
std::string format_addr(const sockaddr* sa, socklen_t len);
std::string local_addr_of(int fd);
std::string peer_addr_of(int fd);
// Maps an IPv4 address to ::ffff:a.b.c.d for a dual-stack (AF_INET6) socket.
SockAddr to_v6_mapped(const SockAddr& a);

// Go's error text: "<op> <net> <src->dst>: <syscall>: <strerror>".
std::string op_context(std::string_view op, std::string_view net, std::string_view src,
                       std::string_view dst);
[[noreturn]] void throw_errno(int err, const std::string& context, std::string_view syscall);

}  // namespace goro::detail
