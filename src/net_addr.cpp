// goro: Go's address syntax for goro::net (net/ipsock.go, lookup.go): networks, host:port
// parsing, resolution and formatting, and the error texts.
//
// Nothing here keeps state across calls except the dual-stack probe (computed once; a
// static local, so thread-safe). Host names resolve through getaddrinfo on a blocking()
// helper thread, so no worker is parked in the resolver; IP literals never reach it.
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "goro/runtime.hpp"
#include "net_fd.hpp"
#include "park.hpp"

namespace goro {
namespace net {

namespace {

class ResolverCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "resolver"; }
  std::string message(int ev) const override { return ::gai_strerror(ev); }
};

}  // namespace

const std::error_category& resolver_category() noexcept {
  static const ResolverCategory category;
  return category;
}

Error::Error(std::error_code ec, const std::string& what)
    : std::system_error(ec, what), what_(std::make_shared<const std::string>(what)) {}

const char* Error::what() const noexcept { return what_->c_str(); }

Timeout::Timeout(const std::string& context)
    : Error(std::errc::timed_out, context.empty() ? "i/o timeout" : context + ": i/o timeout") {}

Closed::Closed(const std::string& context)
    : Error(std::errc::bad_file_descriptor, context.empty()
                                                ? "use of closed network connection"
                                                : context + ": use of closed network connection") {}

}  // namespace net

namespace detail {

namespace {

// Go's errno strings are lower case ("connection refused").
std::string errno_text(int err) {
  std::string s = std::generic_category().message(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

[[noreturn]] void addr_error(std::string_view op, std::string_view net, std::string_view address,
                             std::string_view why) {
  std::string s(op);
  s += ' ';
  s += net;
  s += ": address ";
  s += address;
  s += ": ";
  s += why;
  throw net::Error(std::errc::invalid_argument, s);
}

struct HostPort {
  std::string_view host;
  std::string_view port;
};

// Go's net.SplitHostPort, with its error texts.
HostPort split_host_port(std::string_view op, std::string_view net, std::string_view hp) {
  const auto fail = [&](std::string_view why) { addr_error(op, net, hp, why); };
  const std::size_t i = hp.rfind(':');
  if (i == std::string_view::npos) fail("missing port in address");
  std::string_view host;
  std::size_t j = 0;
  std::size_t k = 0;
  if (!hp.empty() && hp[0] == '[') {
    const std::size_t end = hp.find(']');
    if (end == std::string_view::npos) fail("missing ']' in address");
    if (end + 1 == hp.size()) fail("missing port in address");
    if (end + 1 != i)
      fail(hp[end + 1] == ':' ? "too many colons in address" : "missing port in address");
    host = hp.substr(1, end - 1);
    j = 1;
    k = end + 1;
  } else {
    host = hp.substr(0, i);
    if (host.find(':') != std::string_view::npos) fail("too many colons in address");
  }
  if (hp.find('[', j) != std::string_view::npos) fail("unexpected '[' in address");
  if (hp.find(']', k) != std::string_view::npos) fail("unexpected ']' in address");
  return {host, hp.substr(i + 1)};
}

std::uint16_t parse_port(std::string_view op, const Network& net, std::string_view address,
                         std::string_view port) {
  if (port.empty()) return 0;  // Go: ":" and "host:" mean port 0
  bool numeric = true;
  for (char c : port) numeric = numeric && c >= '0' && c <= '9';
  if (numeric) {
    unsigned long v = 0;
    for (char c : port) {
      v = v * 10 + static_cast<unsigned long>(c - '0');
      if (v > 65535) addr_error(op, net.name, address, "invalid port");
    }
    return static_cast<std::uint16_t>(v);
  }
  // A service name ("http"): /etc/services is a local file, read as Go's netgo does.
  const std::string name(port);
  servent se{};
  servent* result = nullptr;
  char buf[1024];
  const char* proto = net.kind == NetKind::udp ? "udp" : "tcp";
  if (::getservbyname_r(name.c_str(), proto, &se, buf, sizeof buf, &result) != 0 ||
      result == nullptr) {
    std::string s(op);
    s += ' ';
    s += net.name;
    s += ": lookup ";
    s += net.kind == NetKind::udp ? "udp" : "tcp";
    s += '/';
    s += name;
    s += ": unknown port";
    throw net::Error(std::errc::invalid_argument, s);
  }
  return ntohs(static_cast<std::uint16_t>(result->s_port));
}

SockAddr make_v4(in_addr a, std::uint16_t port) {
  SockAddr out;
  auto* sin = reinterpret_cast<sockaddr_in*>(&out.ss);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr = a;
  out.len = sizeof(sockaddr_in);
  return out;
}

SockAddr make_v6(const in6_addr& a, std::uint16_t port, std::uint32_t scope) {
  SockAddr out;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = a;
  sin6->sin6_scope_id = scope;
  out.len = sizeof(sockaddr_in6);
  return out;
}

// Go's supportsIPv4map: can an AF_INET6 socket with IPV6_V6ONLY off carry IPv4 traffic?
bool supports_v4_mapped() {
  static const bool supported = [] {
    const int s = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return false;
    int off = 0;
    bool ok = ::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == 0;
    if (ok) {
      in6_addr mapped{};
      ok = ::inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped) == 1;
      const SockAddr a = make_v6(mapped, 0, 0);
      ok = ok && ::bind(s, a.sa(), a.len) == 0;
    }
    ::close(s);
    return ok;
  }();
  return supported;
}

[[noreturn]] void no_suitable(std::string_view op, const Network& net, std::string_view host) {
  addr_error(op, net.name, host, "no suitable address found");
}

std::vector<SockAddr> lookup(std::string_view op, const Network& net, std::string_view host,
                             std::uint16_t port) {
  const std::string name(host);
  addrinfo hints{};
  hints.ai_family = net.family;
  hints.ai_socktype = net.kind == NetKind::udp ? SOCK_DGRAM : SOCK_STREAM;
  // No AI_ADDRCONFIG: on a host with loopback only it would make "localhost" fail. An
  // address of a family the host cannot reach fails fast and dial tries the next one.
  addrinfo* res = nullptr;
  int rc = 0;
  int err = 0;
  auto call = [&] {
    rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
    err = errno;
  };
  if (current_g() != nullptr) {
    goro::blocking(call);  // the resolver may block its thread for seconds
  } else {
    call();
  }
  if (rc != 0) {
    std::string s(op);
    s += ' ';
    s += net.name;
    s += ": lookup ";
    s += name;
    s += ": ";
    if (rc == EAI_SYSTEM) {
      s += errno_text(err);
      throw net::Error(std::error_code(err, std::generic_category()), s);
    }
    s += (rc == EAI_NONAME || rc == EAI_NODATA) ? "no such host" : ::gai_strerror(rc);
    throw net::Error(std::error_code(rc, net::resolver_category()), s);
  }
  std::vector<SockAddr> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      out.push_back(make_v4(reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, port));
    } else if (ai->ai_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<sockaddr_in6*>(ai->ai_addr);
      out.push_back(make_v6(sin6->sin6_addr, port, sin6->sin6_scope_id));
    }
  }
  ::freeaddrinfo(res);
  if (out.empty()) no_suitable(op, net, host);
  return out;
}

}  // namespace

Network parse_network(std::string_view network, std::initializer_list<NetKind> allowed) {
  Network n{NetKind::tcp, AF_UNSPEC, std::string(network)};
  bool known = true;
  if (network == "tcp") {
  } else if (network == "tcp4") {
    n.family = AF_INET;
  } else if (network == "tcp6") {
    n.family = AF_INET6;
  } else if (network == "udp") {
    n.kind = NetKind::udp;
  } else if (network == "udp4") {
    n = {NetKind::udp, AF_INET, n.name};
  } else if (network == "udp6") {
    n = {NetKind::udp, AF_INET6, n.name};
  } else if (network == "unix") {
    n = {NetKind::unix_stream, AF_UNIX, n.name};
  } else {
    known = false;
  }
  bool ok = false;
  for (NetKind k : allowed) ok = ok || (known && k == n.kind);
  if (!ok) {
    throw net::Error(std::errc::invalid_argument,
                     "unknown network \"" + std::string(network) + "\"");
  }
  return n;
}

std::vector<SockAddr> resolve(const Network& net, std::string_view address, std::string_view op) {
  const HostPort hp = split_host_port(op, net.name, address);
  const std::uint16_t port = parse_port(op, net, address, hp.port);
  const bool listening = op == "listen";
  if (hp.host.empty()) {
    if (listening) {
      // Every interface: Go's favoriteAddrFamily picks the dual-stack [::] when it can.
      if (net.family == AF_INET || (net.family == AF_UNSPEC && !supports_v4_mapped())) {
        return {make_v4(in_addr{htonl(INADDR_ANY)}, port)};
      }
      return {make_v6(in6addr_any, port, 0)};
    }
    std::vector<SockAddr> out;
    if (net.family != AF_INET6) out.push_back(make_v4(in_addr{htonl(INADDR_LOOPBACK)}, port));
    if (net.family != AF_INET) out.push_back(make_v6(in6addr_loopback, port, 0));
    return out;
  }
  const std::string host(hp.host);
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    if (net.family == AF_INET6) no_suitable(op, net, host);
    if (listening && net.family == AF_UNSPEC && v4.s_addr == htonl(INADDR_ANY) &&
        supports_v4_mapped()) {
      return {make_v6(in6addr_any, port, 0)};  // "0.0.0.0:p" is a wildcard too, as in Go
    }
    return {make_v4(v4, port)};
  }
  const std::size_t pct = host.find('%');
  const std::string ip = host.substr(0, pct);
  in6_addr v6{};
  if (::inet_pton(AF_INET6, ip.c_str(), &v6) == 1) {
    if (net.family == AF_INET) no_suitable(op, net, host);
    std::uint32_t scope = 0;
    if (pct != std::string::npos) {
      const std::string zone = host.substr(pct + 1);
      scope = ::if_nametoindex(zone.c_str());
      if (scope == 0) {
        char* end = nullptr;
        const unsigned long v = std::strtoul(zone.c_str(), &end, 10);
        if (zone.empty() || *end != '\0') addr_error(op, net.name, address, "invalid zone");
        scope = static_cast<std::uint32_t>(v);
      }
    }
    return {make_v6(v6, port, scope)};
  }
  if (hp.host.find_first_of("%[]") != std::string_view::npos) {
    addr_error(op, net.name, address, "invalid IP address");
  }
  return lookup(op, net, hp.host, port);
}

SockAddr unix_addr(const Network& net, std::string_view path, std::string_view op) {
  SockAddr out;
  auto* sun = reinterpret_cast<sockaddr_un*>(&out.ss);
  sun->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sun->sun_path) {
    addr_error(op, net.name, path, path.empty() ? "empty Unix socket path" : "path too long");
  }
  std::memcpy(sun->sun_path, path.data(), path.size());
  if (path[0] == '@') sun->sun_path[0] = '\0';  // Linux's abstract namespace, as Go
  out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                   (path[0] == '@' ? 0 : 1));
  return out;
}

SockAddr to_v6_mapped(const SockAddr& a) {
  if (a.family() != AF_INET) return a;
  in6_addr m{};
  m.s6_addr[10] = 0xff;
  m.s6_addr[11] = 0xff;
  const auto* sin = reinterpret_cast<const sockaddr_in*>(&a.ss);
  std::memcpy(&m.s6_addr[12], &sin->sin_addr, 4);
  return make_v6(m, ntohs(sin->sin_port), 0);
}

std::string format_addr(const sockaddr* sa, socklen_t len) {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (len < static_cast<socklen_t>(sizeof(sa_family_t))) return {};
  if (sa->sa_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    return std::string(buf) + ':' + std::to_string(ntohs(sin->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    const std::string port = std::to_string(ntohs(sin6->sin6_port));
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      ::inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf, sizeof buf);
      return std::string(buf) + ':' + port;
    }
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    std::string host(buf);
    if (sin6->sin6_scope_id != 0) {
      char zone[IF_NAMESIZE];
      host += '%';
      host += ::if_indextoname(sin6->sin6_scope_id, zone) != nullptr
                  ? std::string(zone)
                  : std::to_string(sin6->sin6_scope_id);
    }
    return '[' + host + "]:" + port;
  }
  if (sa->sa_family == AF_UNIX) {
    const auto* sun = reinterpret_cast<const sockaddr_un*>(sa);
    const std::size_t off = offsetof(sockaddr_un, sun_path);
    if (static_cast<std::size_t>(len) <= off) return {};  // unnamed
    std::string path(sun->sun_path, static_cast<std::size_t>(len) - off);
    if (path[0] == '\0') {
      path[0] = '@';
    } else {
      path.resize(std::strlen(path.c_str()));
    }
    return path;
  }
  return {};
}

std::string local_addr_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return format_addr(reinterpret_cast<sockaddr*>(&ss), len);
}

std::string peer_addr_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return format_addr(reinterpret_cast<sockaddr*>(&ss), len);
}

std::string op_context(std::string_view op, std::string_view net, std::string_view src,
                       std::string_view dst) {
  std::string s(op);
  s += ' ';
  s += net;
  if (!src.empty() || !dst.empty()) s += ' ';
  if (!src.empty() && !dst.empty()) {
    s += src;
    s += "->";
    s += dst;
  } else {
    s += src.empty() ? dst : src;
  }
  return s;
}

void throw_errno(int err, const std::string& context, std::string_view syscall) {
  std::string s = context;
  s += ": ";
  if (!syscall.empty()) {
    s += syscall;
    s += ": ";
  }
  s += errno_text(err);
  throw net::Error(std::error_code(err, std::generic_category()), s);
}

}  // namespace detail
}  // namespace goro
