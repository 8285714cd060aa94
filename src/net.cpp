// goro: net::Conn, Listener and PacketConn (Go's net/fd_posix.go and internal/poll/fd_unix.go)
// on the runtime's poller (netpoll.hpp). The fd reference protocol is in net_fd.hpp.
//
// Every I/O loop is Go's: take a reference (throws Closed once closing), poll_prepare (a
// deadline already past or an eviction fails at once), try the syscall, and only on EAGAIN
// park in poll_wait; a wake-up may be spurious (edge-triggered readiness, a deadline moved),
// so the loop always retries the syscall. PollResult::timeout maps to Timeout, ::closed to
// Closed. Nothing here ever blocks a worker thread: every socket is SOCK_NONBLOCK, and
// sends use MSG_NOSIGNAL so a vanished peer is EPIPE, never SIGPIPE.
//
// A dial with a Context runs one helper goroutine that waits on ctx.done() and the dial's
// own `stop` channel; if the context ends first it evicts the half-connected socket (the
// dial's poll_wait returns closed) and the dial throws ctx.err(). The dial joins the helper
// (WaitGroup) before the socket can be closed, so the helper never touches a freed PollDesc.
#include "goro/net.hpp"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "net_fd.hpp"
#include "park.hpp"

namespace goro {
namespace detail {

// ---------------------------------------------------------------- the reference protocol

bool netfd_acquire(NetFd* f) noexcept {
  std::uint64_t s = f->state.load(std::memory_order_relaxed);
  do {
    if (s & NetFd::kClosing) return false;
  } while (!f->state.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                           std::memory_order_relaxed));
  return true;
}

namespace {

void destroy(NetFd* f) noexcept {
  poll_close(f->pd);
  ::close(f->sysfd);
  Chan<std::monostate> sig = f->closed;  // a copy: the closer may free f once kDone is set
  f->state.fetch_or(NetFd::kDone, std::memory_order_acq_rel);  // the last touch of *f
  if (sig != Chan<std::monostate>(nullptr)) sig.try_send(std::monostate{});
}

}  // namespace

void netfd_release(NetFd* f) noexcept {
  if (f->state.fetch_sub(1, std::memory_order_acq_rel) == (NetFd::kClosing | 1)) destroy(f);
}

bool netfd_close(NetFd* f, void (*before)(NetFd*)) noexcept {
  std::uint64_t s = f->state.load(std::memory_order_relaxed);
  do {
    if (s & NetFd::kClosing) return false;
  } while (!f->state.compare_exchange_weak(s, (s | NetFd::kClosing) + 1, std::memory_order_acq_rel,
                                           std::memory_order_relaxed));
  if (before != nullptr) before(f);
  // Only a goroutine can wait for the operations in flight; elsewhere the last one out
  // closes the socket whenever it leaves.
  Chan<std::monostate> sig(nullptr);
  if (current_g() != nullptr) {
    sig = Chan<std::monostate>(1);
    f->closed = sig;  // published to the last one out by our release below
  }
  poll_evict(f->pd);
  netfd_release(f);
  if (sig != Chan<std::monostate>(nullptr)) sig.recv();
  return true;
}

void netfd_free(NetFd* f) noexcept {
  if (f == nullptr) return;
  netfd_close(f);
  if (f->state.load(std::memory_order_acquire) & NetFd::kDone) delete f;
}

namespace {

// An operation's hold on a NetFd: a reference, then (optionally) its direction's lock.
class Op {
 public:
  Op(NetFd* f, Mutex NetFd::*mu, std::string_view op) : f_(f) {
    if (f == nullptr) throw net::Closed(std::string(op));
    if (!netfd_acquire(f)) throw net::Closed(op_context(op, f->network, f->laddr, f->raddr));
    if (mu != nullptr) {
      try {
        (f->*mu).lock();
      } catch (...) {
        netfd_release(f);
        throw;
      }
      mu_ = &(f->*mu);
    }
  }
  ~Op() {
    if (mu_ != nullptr) mu_->unlock();
    netfd_release(f_);
  }
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

 private:
  NetFd* f_;
  Mutex* mu_ = nullptr;
};

[[noreturn]] void throw_poll(PollResult r, const std::string& context) {
  if (r == PollResult::timeout) throw net::Timeout(context);
  throw net::Closed(context);
}

std::string context_of(const NetFd* f, std::string_view op) {
  return op_context(op, f->network, f->laddr, f->raddr);
}

// Parks until f is ready in mode; throws Timeout/Closed otherwise.
void wait_ready(NetFd* f, PollMode mode, std::string_view op) {
  const PollResult r = poll_wait(f->pd, mode);
  if (r != PollResult::ready) throw_poll(r, context_of(f, op));
}

void prepare(NetFd* f, PollMode mode, std::string_view op) {
  const PollResult r = poll_prepare(f->pd, mode);
  if (r != PollResult::ready) throw_poll(r, context_of(f, op));
}

// Clock::time_point{} = none (0); a time before the clock's epoch is past, not "none".
std::int64_t to_deadline_ns(Clock::time_point t) {
  if (t == Clock::time_point{}) return 0;
  const std::int64_t ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return ns > 0 ? ns : 1;
}

void set_deadline(NetFd* f, PollMode mode, Clock::time_point t) {
  Op op(f, nullptr, "set deadline");
  poll_set_deadline(f->pd, mode, to_deadline_ns(t));
}

// An fd being set up; closed unless released into a NetFd.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

int new_socket(int family, int type, const std::string& context) {
  const int s = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) throw_errno(errno, context, "socket");
  return s;
}

void set_opt(int fd, int level, int name, int value, const std::string& context) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
    throw_errno(errno, context, "setsockopt");
  }
}

PollDesc* open_pd(int fd, const std::string& context) {
  try {
    return poll_open(fd);
  } catch (const std::system_error& e) {
    throw_errno(e.code().value(), context, "epoll_ctl");
  }
}

// Go sets IPV6_V6ONLY exactly for the "tcp6"/"udp6" networks.
void set_v6only(int fd, const Network& n, int family, const std::string& context) {
  if (family == AF_INET6) set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, n.family == AF_INET6, context);
}

NetFd* new_netfd(FdGuard& s, const std::string& net, std::string laddr, std::string raddr,
                 const std::string& context) {
  PollDesc* pd = open_pd(s.get(), context);
  NetFd* f = nullptr;
  try {
    f = new NetFd(s.get(), pd, net, std::move(laddr), std::move(raddr));
  } catch (...) {
    poll_close(pd);
    throw;
  }
  s.release();
  return f;
}

void unlink_socket_file(NetFd* f) {
  if (!f->unlink_path.empty()) ::unlink(f->unlink_path.c_str());
}

// Waits for ctx.done() while a dial connects; evicts the socket if the context ends first.
class CtxWatch {
 public:
  CtxWatch(const Context* ctx, PollDesc* pd) {
    if (ctx == nullptr) return;
    RecvChan<std::monostate> done = ctx->done();
    if (done == RecvChan<std::monostate>()) return;  // background: never ends
    wg_.add(1);
    try {
      goro::go([this, done, pd] {
        goro::select(goro::on_recv(done,
                                   [&](std::optional<std::monostate>) {
                                     fired_.store(true, std::memory_order_release);
                                     poll_evict(pd);
                                   }),
                     goro::on_recv(stop_));
        wg_.done();  // the last touch of *this
      });
    } catch (...) {
      wg_.done();
      throw;
    }
    active_ = true;
  }
  // Joins the helper; true if it evicted the socket (the context ended).
  bool finish() {
    if (!active_) return false;
    active_ = false;
    stop_.close();
    wg_.wait();
    return fired_.load(std::memory_order_acquire);
  }
  ~CtxWatch() {
    if (active_) finish();
  }
  CtxWatch(const CtxWatch&) = delete;
  CtxWatch& operator=(const CtxWatch&) = delete;

 private:
  bool active_ = false;
  std::atomic<bool> fired_{false};
  Chan<std::monostate> stop_;
  WaitGroup wg_;
};

net::Conn connect_one(const Network& n, const SockAddr& a, std::int64_t deadline_ns,
                      const Context* ctx, std::string_view address) {
  const std::string raddr =
      n.kind == NetKind::unix_stream ? std::string(address) : format_addr(a.sa(), a.len);
  const std::string context = op_context("dial", n.name, "", raddr);
  FdGuard s(new_socket(a.family(), SOCK_STREAM, context));
  if (n.kind == NetKind::tcp) {
    set_v6only(s.get(), n, a.family(), context);
    set_opt(s.get(), IPPROTO_TCP, TCP_NODELAY, 1, context);  // Go's default
  }
  PollDesc* pd = open_pd(s.get(), context);
  bool pd_owned = true;  // poll_close it before the guard closes the fd
  ScopeExit close_pd([&] {
    if (pd_owned) poll_close(pd);
  });
  int err = 0;
  if (::connect(s.get(), a.sa(), a.len) != 0) err = errno;
  if (err == EINPROGRESS || err == EALREADY || err == EINTR) {
    if (deadline_ns != 0) poll_set_deadline(pd, PollMode::write, deadline_ns);
    CtxWatch watch(ctx, pd);
    PollResult r = PollResult::ready;
    for (;;) {
      r = poll_wait(pd, PollMode::write);
      if (r != PollResult::ready) break;
      int so = 0;
      socklen_t len = sizeof so;
      if (::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &so, &len) != 0) so = errno;
      if (so == EINPROGRESS || so == EALREADY || so == EINTR) continue;
      if (so == 0) {
        // Writable with no error may be spurious (Go checks getpeername the same way).
        sockaddr_storage peer{};
        socklen_t plen = sizeof peer;
        if (::getpeername(s.get(), reinterpret_cast<sockaddr*>(&peer), &plen) != 0 &&
            errno == ENOTCONN) {
          continue;
        }
      }
      err = so;
      break;
    }
    // A context that ended evicted the socket, even if it connected in the meantime.
    if (watch.finish()) std::rethrow_exception(ctx->err());
    if (r != PollResult::ready) throw_poll(r, context);
    if (err == 0 && deadline_ns != 0) poll_set_deadline(pd, PollMode::write, 0);
  }
  if (err != 0 && err != EISCONN) throw_errno(err, context, "connect");
  auto* f = new NetFd(s.get(), pd, n.name, local_addr_of(s.get()), raddr);  // or clean up
  pd_owned = false;
  s.release();
  return net::Conn(f);
}

net::Conn dial_impl(const Context* ctx, std::string_view network, std::string_view address,
                    std::int64_t deadline_ns) {
  const Network n = parse_network(network, {NetKind::tcp, NetKind::unix_stream});
  if (ctx != nullptr && ctx->err()) std::rethrow_exception(ctx->err());
  if (n.kind == NetKind::unix_stream) {
    return connect_one(n, unix_addr(n, address, "dial"), deadline_ns, ctx, address);
  }
  const std::vector<SockAddr> addrs = resolve(n, address, "dial");
  std::exception_ptr first;
  for (const SockAddr& a : addrs) {
    if (ctx != nullptr && ctx->err()) std::rethrow_exception(ctx->err());
    try {
      return connect_one(n, a, deadline_ns, ctx, address);
    } catch (const net::Timeout&) {
      throw;  // the deadline covers the whole dial
    } catch (const net::Error&) {
      if (!first) first = std::current_exception();
    }
  }
  std::rethrow_exception(first);
}

}  // namespace
}  // namespace detail

namespace net {

using detail::NetFd;
using detail::Op;
using detail::PollMode;

// ---------------------------------------------------------------- Conn

Conn::~Conn() { detail::netfd_free(fd_); }

Conn& Conn::operator=(Conn&& other) noexcept {
  if (this != &other) {
    detail::netfd_free(fd_);
    fd_ = std::exchange(other.fd_, nullptr);
  }
  return *this;
}

std::size_t Conn::read(void* data, std::size_t n) {
  Op op(fd_, &NetFd::rmu, "read");
  if (n == 0) return 0;
  detail::prepare(fd_, PollMode::read, "read");
  for (;;) {
    const ssize_t k = ::read(fd_->sysfd, data, n);
    if (k >= 0) return static_cast<std::size_t>(k);
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EAGAIN && err != EWOULDBLOCK) {
      detail::throw_errno(err, detail::context_of(fd_, "read"), "read");
    }
    detail::wait_ready(fd_, PollMode::read, "read");
  }
}

std::size_t Conn::write(const void* data, std::size_t n) {
  Op op(fd_, &NetFd::wmu, "write");
  detail::prepare(fd_, PollMode::write, "write");
  const auto* p = static_cast<const char*>(data);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t k = ::send(fd_->sysfd, p + done, n - done, MSG_NOSIGNAL);
    if (k >= 0) {
      done += static_cast<std::size_t>(k);
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EAGAIN && err != EWOULDBLOCK) {
      detail::throw_errno(err, detail::context_of(fd_, "write"), "write");
    }
    detail::wait_ready(fd_, PollMode::write, "write");
  }
  return n;
}

void Conn::close() {
  if (fd_ != nullptr) detail::netfd_close(fd_);
}

namespace {
void shutdown(NetFd* f, int how, std::string_view op) {
  Op hold(f, nullptr, op);
  if (::shutdown(f->sysfd, how) != 0) {
    detail::throw_errno(errno, detail::context_of(f, op), "shutdown");
  }
}
}  // namespace

void Conn::close_write() { shutdown(fd_, SHUT_WR, "close_write"); }
void Conn::close_read() { shutdown(fd_, SHUT_RD, "close_read"); }

void Conn::set_deadline(Clock::time_point t) { detail::set_deadline(fd_, PollMode::read_write, t); }
void Conn::set_read_deadline(Clock::time_point t) { detail::set_deadline(fd_, PollMode::read, t); }
void Conn::set_write_deadline(Clock::time_point t) {
  detail::set_deadline(fd_, PollMode::write, t);
}

std::string Conn::local_addr() const { return fd_ != nullptr ? fd_->laddr : std::string(); }
std::string Conn::remote_addr() const { return fd_ != nullptr ? fd_->raddr : std::string(); }
int Conn::fd() const { return fd_ != nullptr && !fd_->is_closing() ? fd_->sysfd : -1; }
Conn::operator bool() const { return fd_ != nullptr && !fd_->is_closing(); }

// ---------------------------------------------------------------- Listener

Listener::~Listener() {
  if (fd_ != nullptr) detail::netfd_close(fd_, detail::unlink_socket_file);
  detail::netfd_free(fd_);
}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    if (fd_ != nullptr) detail::netfd_close(fd_, detail::unlink_socket_file);
    detail::netfd_free(fd_);
    fd_ = std::exchange(other.fd_, nullptr);
  }
  return *this;
}

Conn Listener::accept() {
  Op op(fd_, &NetFd::rmu, "accept");
  detail::prepare(fd_, PollMode::read, "accept");
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int c =
        ::accept4(fd_->sysfd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      detail::FdGuard s(c);
      const std::string context = detail::context_of(fd_, "accept");
      if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
        detail::set_opt(c, IPPROTO_TCP, TCP_NODELAY, 1, context);
      }
      return Conn(detail::new_netfd(s, fd_->network, detail::local_addr_of(c),
                                    detail::format_addr(reinterpret_cast<sockaddr*>(&ss), len),
                                    context));
    }
    const int err = errno;
    if (err == EINTR || err == ECONNABORTED) continue;
    if (err != EAGAIN && err != EWOULDBLOCK) {
      detail::throw_errno(err, detail::context_of(fd_, "accept"), "accept");
    }
    detail::wait_ready(fd_, PollMode::read, "accept");
  }
}

void Listener::close() {
  if (fd_ != nullptr) detail::netfd_close(fd_, detail::unlink_socket_file);
}

void Listener::set_deadline(Clock::time_point t) { detail::set_deadline(fd_, PollMode::read, t); }
std::string Listener::addr() const { return fd_ != nullptr ? fd_->laddr : std::string(); }
int Listener::fd() const { return fd_ != nullptr && !fd_->is_closing() ? fd_->sysfd : -1; }
Listener::operator bool() const { return fd_ != nullptr && !fd_->is_closing(); }

// ---------------------------------------------------------------- PacketConn

PacketConn::~PacketConn() { detail::netfd_free(fd_); }

PacketConn& PacketConn::operator=(PacketConn&& other) noexcept {
  if (this != &other) {
    detail::netfd_free(fd_);
    fd_ = std::exchange(other.fd_, nullptr);
  }
  return *this;
}

std::pair<std::size_t, std::string> PacketConn::read_from(std::span<std::byte> buf) {
  Op op(fd_, &NetFd::rmu, "read");
  detail::prepare(fd_, PollMode::read, "read");
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const ssize_t k =
        ::recvfrom(fd_->sysfd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&ss), &len);
    if (k >= 0) {
      return {static_cast<std::size_t>(k),
              detail::format_addr(reinterpret_cast<sockaddr*>(&ss), len)};
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EAGAIN && err != EWOULDBLOCK) {
      detail::throw_errno(err, detail::context_of(fd_, "read"), "recvfrom");
    }
    detail::wait_ready(fd_, PollMode::read, "read");
  }
}

std::size_t PacketConn::write_to(std::span<const std::byte> buf, std::string_view address) {
  if (fd_ == nullptr || fd_->is_closing()) {
    throw Closed(fd_ == nullptr ? "write" : detail::context_of(fd_, "write"));
  }
  // Resolved before taking the socket: a slow lookup must not hold up a close().
  const detail::Network n = detail::parse_network(fd_->network, {detail::NetKind::udp});
  const std::string context = detail::op_context("write", n.name, fd_->laddr, address);
  // The socket's family decides which resolved address fits (a dual-stack socket takes
  // IPv4 addresses as v4-mapped v6).
  std::optional<detail::SockAddr> to;
  for (const detail::SockAddr& a : detail::resolve(n, address, "write")) {
    if (a.family() == fd_->family) {
      to = a;
      break;
    }
    if (fd_->family == AF_INET6 && a.family() == AF_INET && !to) to = detail::to_v6_mapped(a);
  }
  if (!to) {
    throw Error(std::errc::address_family_not_supported,
                context + ": address family not supported by this socket");
  }
  Op op(fd_, &NetFd::wmu, "write");
  detail::prepare(fd_, PollMode::write, "write");
  for (;;) {
    const ssize_t k = ::sendto(fd_->sysfd, buf.data(), buf.size(), MSG_NOSIGNAL, to->sa(), to->len);
    if (k >= 0) return static_cast<std::size_t>(k);
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EAGAIN && err != EWOULDBLOCK) detail::throw_errno(err, context, "sendto");
    detail::wait_ready(fd_, PollMode::write, "write");
  }
}

void PacketConn::close() {
  if (fd_ != nullptr) detail::netfd_close(fd_);
}
void PacketConn::set_deadline(Clock::time_point t) {
  detail::set_deadline(fd_, PollMode::read_write, t);
}
void PacketConn::set_read_deadline(Clock::time_point t) {
  detail::set_deadline(fd_, PollMode::read, t);
}
void PacketConn::set_write_deadline(Clock::time_point t) {
  detail::set_deadline(fd_, PollMode::write, t);
}
std::string PacketConn::local_addr() const { return fd_ != nullptr ? fd_->laddr : std::string(); }
int PacketConn::fd() const { return fd_ != nullptr && !fd_->is_closing() ? fd_->sysfd : -1; }
PacketConn::operator bool() const { return fd_ != nullptr && !fd_->is_closing(); }

// ---------------------------------------------------------------- listen, dial

Listener listen(std::string_view network, std::string_view address) {
  const detail::Network n =
      detail::parse_network(network, {detail::NetKind::tcp, detail::NetKind::unix_stream});
  const std::string context = detail::op_context("listen", n.name, address, "");
  detail::SockAddr a;
  if (n.kind == detail::NetKind::unix_stream) {
    a = detail::unix_addr(n, address, "listen");
  } else {
    const std::vector<detail::SockAddr> addrs = detail::resolve(n, address, "listen");
    a = addrs.front();
    for (const detail::SockAddr& b : addrs) {
      if (b.family() == AF_INET) {  // Go prefers IPv4 for a name that has both
        a = b;
        break;
      }
    }
  }
  detail::FdGuard s(detail::new_socket(a.family(), SOCK_STREAM, context));
  if (n.kind == detail::NetKind::tcp) {
    detail::set_v6only(s.get(), n, a.family(), context);
    detail::set_opt(s.get(), SOL_SOCKET, SO_REUSEADDR, 1, context);
  }
  if (::bind(s.get(), a.sa(), a.len) != 0) detail::throw_errno(errno, context, "bind");
  // Unix: the file exists from here on; remove it if the rest fails.
  const bool unix_file = n.kind == detail::NetKind::unix_stream && address[0] != '@';
  const std::string path(address);
  try {
    if (::listen(s.get(), 4096) != 0) detail::throw_errno(errno, context, "listen");
    std::string laddr =
        n.kind == detail::NetKind::unix_stream ? path : detail::local_addr_of(s.get());
    NetFd* f = detail::new_netfd(s, n.name, std::move(laddr), "", context);
    if (unix_file) f->unlink_path = path;
    return Listener(f);
  } catch (...) {
    if (unix_file) ::unlink(path.c_str());
    throw;
  }
}

PacketConn listen_packet(std::string_view network, std::string_view address) {
  const detail::Network n = detail::parse_network(network, {detail::NetKind::udp});
  const std::string context = detail::op_context("listen", n.name, address, "");
  const detail::SockAddr a = detail::resolve(n, address, "listen").front();
  detail::FdGuard s(detail::new_socket(a.family(), SOCK_DGRAM, context));
  detail::set_v6only(s.get(), n, a.family(), context);
  if (::bind(s.get(), a.sa(), a.len) != 0) detail::throw_errno(errno, context, "bind");
  NetFd* f = detail::new_netfd(s, n.name, detail::local_addr_of(s.get()), "", context);
  f->family = a.family();
  return PacketConn(f);
}

Conn dial(std::string_view network, std::string_view address) {
  return detail::dial_impl(nullptr, network, address, 0);
}

Conn dial(const Context& ctx, std::string_view network, std::string_view address) {
  return detail::dial_impl(&ctx, network, address, 0);
}

Conn dial_timeout(std::string_view network, std::string_view address, Clock::duration timeout) {
  std::int64_t deadline = 0;
  if (timeout > Clock::duration::zero()) {
    const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
    const std::int64_t now = detail::monotonic_ns();
    deadline = ns > INT64_MAX - now ? INT64_MAX : now + ns;
  }
  return detail::dial_impl(nullptr, network, address, deadline);
}

std::size_t read_full(Conn& c, std::span<std::byte> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    const std::size_t k = c.read(buf.subspan(got));
    if (k == 0) {
      if (got == 0) return 0;
      throw Error("unexpected EOF");
    }
    got += k;
  }
  return got;
}

namespace {
void wait_fd(int fd, PollMode mode, Clock::time_point deadline, const char* op) {
  detail::PollResult r;
  try {
    r = detail::poll_wait_fd(fd, mode, detail::to_deadline_ns(deadline));
  } catch (const std::system_error& e) {  // epoll_ctl refused the fd (EPERM, EBADF)
    detail::throw_errno(e.code().value(), std::string(op) + " fd " + std::to_string(fd),
                        "epoll_ctl");
  }
  if (r == detail::PollResult::timeout)
    throw Timeout(std::string(op) + " fd " + std::to_string(fd));
}
}  // namespace

void wait_readable(int fd, Clock::time_point deadline) {
  wait_fd(fd, PollMode::read, deadline, "wait_readable");
}

void wait_writable(int fd, Clock::time_point deadline) {
  wait_fd(fd, PollMode::write, deadline, "wait_writable");
}

}  // namespace net
}  // namespace goro
