// goro::http's plain data types: Header, Request's accessors, MaxBytesError, error().
// Nothing here touches Beast or a connection: a Request's body is reached only through its
// BodyReader, which the server's connection (src/http/server.cpp) owns and keeps alive for
// the duration of the handler call.
#include <algorithm>
#include <cstring>
#include <string>

#include "goro/http.hpp"
#include "internal.hpp"

namespace goro::http {

MaxBytesError::MaxBytesError(std::int64_t limit_)
    : std::runtime_error("http: request body too large"), limit(limit_) {}

namespace detail {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(char(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace detail

std::string Header::get(std::string_view name) const {
  for (const auto& [k, v] : fields_)
    if (detail::iequals(k, name)) return v;
  return {};
}

std::vector<std::string> Header::values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : fields_)
    if (detail::iequals(k, name)) out.push_back(v);
  return out;
}

bool Header::has(std::string_view name) const {
  return std::any_of(fields_.begin(), fields_.end(),
                     [&](const Field& f) { return detail::iequals(f.first, name); });
}

void Header::set(std::string_view name, std::string_view value) {
  del(name);
  add(name, value);
}

void Header::add(std::string_view name, std::string_view value) {
  fields_.emplace_back(std::string(name), std::string(value));
}

void Header::del(std::string_view name) {
  std::erase_if(fields_, [&](const Field& f) { return detail::iequals(f.first, name); });
}

std::size_t Request::read(std::span<std::byte> buf) {
  if (body == nullptr || buf.empty()) return 0;
  return body->read(buf);
}

std::string Request::read_all(std::size_t limit) {
  std::string out;
  std::byte chunk[16 << 10];
  for (;;) {
    std::size_t n = read(chunk);
    if (n == 0) return out;
    if (out.size() + n > limit) throw MaxBytesError(static_cast<std::int64_t>(limit));
    out.append(reinterpret_cast<const char*>(chunk), n);
  }
}

std::string Request::query_value(std::string_view name) const {
  std::string_view q = raw_query;
  while (!q.empty()) {
    std::size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    std::size_t eq = pair.find('=');
    auto key = detail::percent_decode(pair.substr(0, eq), true);
    if (!key || *key != name) continue;
    if (eq == std::string_view::npos) return {};
    return detail::percent_decode(pair.substr(eq + 1), true).value_or(std::string());
  }
  return {};
}

std::string_view Request::path_value(std::string_view name) const {
  for (const auto& [k, v] : path_values_)
    if (k == name) return v;
  return {};
}

void Request::set_path_value(std::string_view name, std::string_view value) {
  for (auto& [k, v] : path_values_)
    if (k == name) {
      v = value;
      return;
    }
  path_values_.emplace_back(std::string(name), std::string(value));
}

void error(ResponseWriter& w, int status, std::string_view message) {
  std::string body(message.empty() ? std::string_view(status_text(status)) : message);
  if (message.empty()) body = std::to_string(status) + " " + body;
  body += '\n';
  w.header().set("Content-Type", "text/plain; charset=utf-8");
  w.header().set("X-Content-Type-Options", "nosniff");
  w.header().set("Content-Length", std::to_string(body.size()));
  w.write_header(status);
  w.write(body);
}

}  // namespace goro::http
