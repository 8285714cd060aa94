// goro select: Go's select statement.
//
//   std::size_t which = goro::select(
//       goro::on_recv(jobs, [&](std::optional<Job> j) { if (j) handle(*j); }),
//       goro::on_send(results, r, [&] { ++sent; }),
//       goro::on_recv(ctx.done()),                  // callbacks are optional
//       goro::on_default([&] { idle(); }));         // optional: makes select non-blocking
//
// Cases are checked atomically; among ready cases one is chosen uniformly at random; the
// return value is the index of the case that ran, counting from 0 in written order
// (the default case included). Receiving on a closed channel is ready (the callback gets
// std::nullopt); sending on a closed channel throws ClosedChannel. A nil channel's case
// never fires, and select() with no cases blocks forever.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "goro/chan.hpp"

namespace goro {
namespace detail {

enum class CaseKind : std::uint8_t { recv, send, nil };

// One channel case as the runtime sees it.
struct SelectCase {
  ChanCore* core;
  void* slot;  // send: the T to move from; recv: raw storage for a T
  CaseKind kind;
  bool received = false;  // recv: a value was constructed in slot (false: closed)
};

// Returns the index into cases of the case that fired, or n when has_default and none was
// ready. Throws ClosedChannel when the chosen case sends on a closed channel.
std::size_t select_impl(SelectCase* cases, std::size_t n, bool has_default);
// select {} : parks forever.
[[noreturn]] void select_forever();

struct NoCallback {};

template <class ChanLike>
ChanHandle handle_of(const ChanLike& c) {
  ChanCore* core = ChanAccess::core(c);
  if (core) chan_ref(core);
  return ChanHandle(core);
}

// A case refers to its channel without counting a reference when the channel is an lvalue
// (it outlives the select statement), and owns the handle of a temporary (`after(d)`).
struct CaseChan {
  ChanHandle owned;
  ChanCore* core;
  template <class ChanLike>
  static CaseChan borrow(const ChanLike& c) {
    return {ChanHandle(), ChanAccess::core(c)};
  }
  template <class ChanLike>
  static CaseChan own(ChanLike&& c) {
    CaseChan cc{handle_of(c), nullptr};
    cc.core = cc.owned.get();
    return cc;
  }
};

template <class T, class F>
struct RecvCase {
  CaseChan chan;
  F fn;
  Slot<T> slot;
  SelectCase as_case() {
    return {chan.core, slot.raw(), chan.core ? CaseKind::recv : CaseKind::nil};
  }
  void fire(bool received) {
    std::optional<T> v = slot.take(received);
    if constexpr (std::is_invocable_v<F&, std::optional<T>>) {
      fn(std::move(v));
    } else if constexpr (!std::is_same_v<F, NoCallback>) {
      fn();
    }
  }
};

template <class T, class F>
struct SendCase {
  CaseChan chan;
  T value;
  F fn;
  SelectCase as_case() {
    return {chan.core, std::addressof(value), chan.core ? CaseKind::send : CaseKind::nil};
  }
  void fire(bool) {
    if constexpr (!std::is_same_v<F, NoCallback>) fn();
  }
};

template <class F>
struct DefaultCase {
  F fn;
  void fire() {
    if constexpr (!std::is_same_v<F, NoCallback>) fn();
  }
};

template <class C>
struct IsDefault : std::false_type {};
template <class F>
struct IsDefault<DefaultCase<F>> : std::true_type {};

}  // namespace detail

template <class T, class F = detail::NoCallback>
detail::RecvCase<T, std::decay_t<F>> on_recv(const Chan<T>& ch, F&& fn = {}) {
  return {detail::CaseChan::borrow(ch), std::forward<F>(fn), {}};
}
template <class T, class F = detail::NoCallback>
detail::RecvCase<T, std::decay_t<F>> on_recv(Chan<T>&& ch, F&& fn = {}) {
  return {detail::CaseChan::own(ch), std::forward<F>(fn), {}};
}
template <class T, class F = detail::NoCallback>
detail::RecvCase<T, std::decay_t<F>> on_recv(const RecvChan<T>& ch, F&& fn = {}) {
  return {detail::CaseChan::borrow(ch), std::forward<F>(fn), {}};
}
template <class T, class F = detail::NoCallback>
detail::RecvCase<T, std::decay_t<F>> on_recv(RecvChan<T>&& ch, F&& fn = {}) {
  return {detail::CaseChan::own(ch), std::forward<F>(fn), {}};
}
template <class T, class U, class F = detail::NoCallback>
detail::SendCase<T, std::decay_t<F>> on_send(const Chan<T>& ch, U&& value, F&& fn = {}) {
  return {detail::CaseChan::borrow(ch), T(std::forward<U>(value)), std::forward<F>(fn)};
}
template <class T, class U, class F = detail::NoCallback>
detail::SendCase<T, std::decay_t<F>> on_send(Chan<T>&& ch, U&& value, F&& fn = {}) {
  return {detail::CaseChan::own(ch), T(std::forward<U>(value)), std::forward<F>(fn)};
}
template <class T, class U, class F = detail::NoCallback>
detail::SendCase<T, std::decay_t<F>> on_send(const SendChan<T>& ch, U&& value, F&& fn = {}) {
  return {detail::CaseChan::borrow(ch), T(std::forward<U>(value)), std::forward<F>(fn)};
}
template <class T, class U, class F = detail::NoCallback>
detail::SendCase<T, std::decay_t<F>> on_send(SendChan<T>&& ch, U&& value, F&& fn = {}) {
  return {detail::CaseChan::own(ch), T(std::forward<U>(value)), std::forward<F>(fn)};
}
template <class F = detail::NoCallback>
detail::DefaultCase<std::decay_t<F>> on_default(F&& fn = {}) {
  return {std::forward<F>(fn)};
}

inline std::size_t select() { detail::select_forever(); }

template <class... Cases>
std::size_t select(Cases&&... cases) {
  constexpr std::size_t total = sizeof...(Cases);
  constexpr std::size_t defaults =
      (std::size_t{0} + ... + detail::IsDefault<std::decay_t<Cases>>::value);
  static_assert(defaults <= 1, "goro::select: at most one on_default case");
  constexpr std::size_t n = total - defaults;

  auto refs = std::forward_as_tuple(cases...);
  std::array<detail::SelectCase, (n > 0 ? n : 1)> rt{};
  std::array<std::size_t, (n > 0 ? n : 1)> written_index{};
  std::size_t default_index = total;
  {
    std::size_t k = 0;
    std::size_t i = 0;
    auto collect = [&](auto& c) {
      if constexpr (detail::IsDefault<std::decay_t<decltype(c)>>::value) {
        default_index = i;
      } else {
        rt[k] = c.as_case();
        written_index[k] = i;
        ++k;
      }
      ++i;
    };
    std::apply([&](auto&... c) { (collect(c), ...); }, refs);
  }
  std::size_t chosen = detail::select_impl(rt.data(), n, defaults == 1);
  std::size_t fired = chosen == n ? default_index : written_index[chosen];
  {
    std::size_t i = 0;
    auto dispatch = [&](auto& c) {
      if (i++ != fired) return;
      if constexpr (detail::IsDefault<std::decay_t<decltype(c)>>::value) {
        c.fire();
      } else {
        c.fire(rt[chosen].received);
      }
    };
    std::apply([&](auto&... c) { (dispatch(c), ...); }, refs);
  }
  return fired;
}

}  // namespace goro
