// goro::http::ServeMux: Go 1.22 pattern routing by linear scan over the registered patterns.
// A Route is immutable once registered; serve_http only reads the route list, so routing is
// safe from many connection goroutines at once as long as nobody registers meanwhile (the
// documented rule, as with Go's mux before it took a lock).
#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "goro/http.hpp"
#include "internal.hpp"

namespace goro::http {
namespace {

enum class Kind : int { literal = 0, wild = 1, rest = 2 };

struct Segment {
  Kind kind;
  std::string text;  // literal text (decoded) or wildcard name ("" for a trailing "/")
};

enum class End { exact, slash, prefix };  // "/a", "/a/{$}", "/a/" (or "/a/{x...}")

struct Route {
  std::string pattern;
  std::string method;  // "" = any
  std::vector<Segment> segs;
  End end = End::exact;
  Handler handler;

  // Specificity ranks position by position, with the end as a last element, so that two
  // patterns matching one path compare lexicographically (smaller = more specific).
  std::vector<int> ranks() const {
    std::vector<int> r;
    for (const auto& s : segs) r.push_back(static_cast<int>(s.kind));
    if (end == End::slash) r.push_back(0);
    if (end == End::prefix) r.push_back(2);
    return r;
  }
};

std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> out;
  p.remove_prefix(1);  // the leading '/'
  for (;;) {
    std::size_t slash = p.find('/');
    out.push_back(p.substr(0, slash));
    if (slash == std::string_view::npos) return out;
    p.remove_prefix(slash + 1);
  }
}

Route parse_pattern(std::string_view pattern) {
  auto bad = [&](const char* why) {
    return std::invalid_argument("http: pattern \"" + std::string(pattern) + "\": " + why);
  };
  Route r;
  r.pattern = pattern;
  std::string_view p = pattern;
  if (std::size_t sp = p.find_first_of(" \t"); sp != std::string_view::npos) {
    r.method = p.substr(0, sp);
    p.remove_prefix(sp);
    while (!p.empty() && (p.front() == ' ' || p.front() == '\t')) p.remove_prefix(1);
    if (r.method.empty()) throw bad("empty method");
  }
  if (p.empty() || p.front() != '/') throw bad("the path must start with '/' (hosts unsupported)");
  auto parts = split_path(p);
  std::set<std::string> names;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::string_view s = parts[i];
    bool last = i + 1 == parts.size();
    if (last && s.empty()) {
      r.end = End::prefix;
      break;
    }
    if (s.front() != '{') {
      if (s.find_first_of("{}") != std::string_view::npos) throw bad("bad wildcard segment");
      auto dec = detail::percent_decode(s, false);
      if (!dec) throw bad("bad escape");
      r.segs.push_back({Kind::literal, *dec});
      continue;
    }
    if (s.back() != '}') throw bad("bad wildcard segment");
    std::string_view name = s.substr(1, s.size() - 2);
    if (name == "$") {
      // "{$}" stands only as the last segment ("/a/{$}" or "/{$}"): the path's end.
      if (!last) throw bad("{$} not at the end");
      r.end = End::slash;
      break;
    }
    bool rest = name.size() > 3 && name.ends_with("...");
    if (rest) name.remove_suffix(3);
    if (name.empty()) throw bad("empty wildcard");
    if (rest && !last) throw bad("{...} wildcard not at the end");
    if (!names.insert(std::string(name)).second) throw bad("duplicate wildcard name");
    r.segs.push_back({rest ? Kind::rest : Kind::wild, std::string(name)});
  }
  return r;
}

// Matches decoded request segments; fills values with the wildcards' values.
bool match(const Route& r, const std::vector<std::string>& req,
           std::vector<std::pair<std::string, std::string>>* values) {
  std::size_t n = r.segs.size();
  for (std::size_t i = 0; i < n; ++i) {
    const Segment& s = r.segs[i];
    if (i >= req.size()) return false;
    if (s.kind == Kind::rest) {
      std::string v;
      for (std::size_t j = i; j < req.size(); ++j) {
        if (j > i) v += '/';
        v += req[j];
      }
      if (values) values->emplace_back(s.text, std::move(v));
      return true;
    }
    if (s.kind == Kind::literal && req[i] != s.text) return false;
    if (s.kind == Kind::wild) {
      if (req[i].empty()) return false;
      if (values) values->emplace_back(s.text, req[i]);
    }
  }
  switch (r.end) {
    case End::exact:
      return req.size() == n;
    case End::slash:
      return req.size() == n + 1 && req[n].empty();
    case End::prefix:
      return req.size() > n;
  }
  return false;
}

bool method_allows(const std::string& pattern_method, std::string_view m) {
  return pattern_method.empty() || pattern_method == m || (pattern_method == "GET" && m == "HEAD");
}

// Is a more specific than b (both matching one path)?
bool more_specific(const Route& a, const Route& b) {
  auto ra = a.ranks(), rb = b.ranks();
  if (ra != rb) return std::lexicographical_compare(ra.begin(), ra.end(), rb.begin(), rb.end());
  return !a.method.empty() && b.method.empty();
}

}  // namespace

struct ServeMux::Impl {
  std::vector<Route> routes;
};

ServeMux::ServeMux() : impl_(std::make_unique<Impl>()) {}
ServeMux::~ServeMux() = default;

void ServeMux::handle(std::string_view pattern, Handler h) {
  if (!h) throw std::invalid_argument("http: nil handler");
  Route r = parse_pattern(pattern);
  for (const Route& o : impl_->routes) {
    bool same_shape =
        o.method == r.method && o.end == r.end && o.segs.size() == r.segs.size() &&
        std::equal(o.segs.begin(), o.segs.end(), r.segs.begin(),
                   [](const Segment& x, const Segment& y) {
                     return x.kind == y.kind && (x.kind != Kind::literal || x.text == y.text);
                   });
    if (same_shape)
      throw std::invalid_argument("http: pattern \"" + std::string(pattern) +
                                  "\" conflicts with pattern \"" + o.pattern + "\"");
  }
  r.handler = std::move(h);
  impl_->routes.push_back(std::move(r));
}

void ServeMux::serve_http(ResponseWriter& w, Request& req) {
  // Segments are split on the escaped path, then decoded one by one (so "%2F" stays inside
  // its segment, as in Go 1.22).
  std::string_view raw = req.target;
  raw = raw.substr(0, raw.find('?'));
  if (raw.empty() || raw.front() != '/') {
    error(w, 400);
    return;
  }
  std::vector<std::string> segs;
  for (std::string_view s : split_path(raw)) {
    auto d = detail::percent_decode(s, false);
    if (!d) {
      error(w, 400);
      return;
    }
    segs.push_back(std::move(*d));
  }

  const Route* best = nullptr;
  std::set<std::string> allow;
  bool path_matched = false;
  for (const Route& r : impl_->routes) {
    if (!match(r, segs, nullptr)) continue;
    path_matched = true;
    if (!method_allows(r.method, req.method)) {
      allow.insert(r.method);
      if (r.method == "GET") allow.insert("HEAD");
      continue;
    }
    if (best == nullptr || more_specific(r, *best)) best = &r;
  }
  if (best != nullptr) {
    std::vector<std::pair<std::string, std::string>> values;
    match(*best, segs, &values);
    for (auto& [k, v] : values) req.set_path_value(k, v);
    best->handler(w, req);
    return;
  }
  if (path_matched) {
    std::string list;
    for (const auto& m : allow) list += (list.empty() ? "" : ", ") + m;
    w.header().set("Allow", list);
    error(w, 405);
    return;
  }
  // "/dir" where "/dir/" would match: redirect (Go's mux does the same).
  if (!segs.back().empty()) {
    segs.emplace_back();
    for (const Route& r : impl_->routes) {
      if (r.end == End::exact || !method_allows(r.method, req.method) || !match(r, segs, nullptr))
        continue;
      std::string loc = std::string(raw) + "/";
      if (!req.raw_query.empty()) loc += "?" + req.raw_query;
      w.header().set("Location", loc);
      error(w, 301);
      return;
    }
  }
  error(w, 404);
}

Handler ServeMux::handler() {
  return [this](ResponseWriter& w, Request& r) { serve_http(w, r); };
}

}  // namespace goro::http
