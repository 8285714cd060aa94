// goro channels: Go's chan T.
//
//   goro::Chan<std::string> lines(16);          // buffered; Chan<T>() is unbuffered
//   goro::go([lines]() mutable {                 // handles are cheap to copy, like Go's
//     lines.send("hello");
//     lines.close();
//   });
//   for (std::string s : lines) std::cout << s;  // receives until closed and drained
//
// send() blocks until a receiver takes the value (unbuffered) or there is room (buffered);
// recv() returns std::nullopt once the channel is closed and drained. A nil channel
// (Chan<T>(nullptr)) blocks forever. Sending on or closing a closed channel throws
// ClosedChannel with Go's panic text. try_send/try_recv/size/capacity/close never park and
// may be called from threads outside goro::run.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "goro/detail/core.hpp"

namespace goro {

struct ClosedChannel : std::logic_error {
  explicit ClosedChannel(const char* what) : std::logic_error(what) {}
};

namespace detail {

struct ChanCore;  // src/chan.hpp

// How the type-erased channel moves and destroys its elements.
struct ElemOps {
  std::size_t size;
  std::size_t align;
  void (*move_construct)(void* dst, void* src) noexcept;  // placement-new T(std::move(*src))
  void (*destroy)(void* p) noexcept;
  bool trivial;  // trivially copyable: move is memcpy, destroy is nothing
};

template <class T>
inline constexpr ElemOps elem_ops_for{
    sizeof(T), alignof(T),
    [](void* dst, void* src) noexcept { ::new (dst) T(std::move(*static_cast<T*>(src))); },
    [](void* p) noexcept { static_cast<T*>(p)->~T(); }, std::is_trivially_copyable_v<T>};

ChanCore* chan_make(const ElemOps* ops, std::size_t capacity);
void chan_ref(ChanCore* c) noexcept;
void chan_unref(ChanCore* c) noexcept;
// value points at a T; it is moved from once the send completes.
void chan_send(ChanCore* c, void* value);
// out is raw storage for a T; returns true when a value was constructed there.
bool chan_recv(ChanCore* c, void* out);
bool chan_try_send(ChanCore* c, void* value);
bool chan_try_recv(ChanCore* c, void* out);
void chan_close(ChanCore* c);
std::size_t chan_size(const ChanCore* c) noexcept;
std::size_t chan_capacity(const ChanCore* c) noexcept;

// Raw, suitably aligned storage for one T that may or may not hold a value.
template <class T>
struct Slot {
  alignas(T) unsigned char bytes[sizeof(T)];
  void* raw() noexcept { return bytes; }
  std::optional<T> take(bool has_value) {
    if (!has_value) return std::nullopt;
    T* p = std::launder(reinterpret_cast<T*>(bytes));
    std::optional<T> out(std::move(*p));
    p->~T();
    return out;
  }
};

// Shared ownership of a ChanCore (intrusive count); nullptr is the nil channel.
class ChanHandle {
 public:
  ChanHandle() noexcept = default;
  explicit ChanHandle(ChanCore* c) noexcept : core_(c) {}
  ChanHandle(const ChanHandle& o) noexcept : core_(o.core_) {
    if (core_) chan_ref(core_);
  }
  ChanHandle(ChanHandle&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  ChanHandle& operator=(ChanHandle o) noexcept {
    std::swap(core_, o.core_);
    return *this;
  }
  ~ChanHandle() {
    if (core_) chan_unref(core_);
  }
  ChanCore* get() const noexcept { return core_; }

 private:
  ChanCore* core_ = nullptr;
};

template <class T>
class ChanOps;

// How select reaches a view's channel without making core() public.
struct ChanAccess {
  template <class ChanLike>
  static ChanCore* core(const ChanLike& c) noexcept {
    return c.core();
  }
};

}  // namespace detail

template <class T>
class Chan;
template <class T>
class SendChan;
template <class T>
class RecvChan;

// Input iterator for range-for over a channel: each step is one recv().
template <class T>
class ChanIterator {
 public:
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  struct Sentinel {};

  // Holds its own handle: the loop body may reassign or destroy the variable it ranges over.
  explicit ChanIterator(detail::ChanHandle h) : handle_(std::move(h)) { advance(); }
  T&& operator*() { return std::move(*value_); }
  ChanIterator& operator++() {
    advance();
    return *this;
  }
  void operator++(int) { advance(); }
  friend bool operator==(const ChanIterator& it, Sentinel) noexcept { return !it.value_; }

 private:
  void advance() {
    value_.reset();
    detail::Slot<T> slot;
    value_ = slot.take(detail::chan_recv(handle_.get(), slot.raw()));
  }
  detail::ChanHandle handle_;
  std::optional<T> value_;
};

namespace detail {
// What every channel view shares: the handle, size, capacity, truthiness, identity.
template <class T>
class ChanOps {
 public:
  std::size_t size() const noexcept { return chan_size(h_.get()); }
  std::size_t capacity() const noexcept { return chan_capacity(h_.get()); }
  explicit operator bool() const noexcept { return h_.get() != nullptr; }

 protected:
  friend struct ChanAccess;
  ChanCore* core() const noexcept { return h_.get(); }

  ChanOps() = default;
  explicit ChanOps(ChanHandle h) noexcept : h_(std::move(h)) {}

  void do_send(T value) { chan_send(h_.get(), &value); }
  bool do_try_send(T value) { return chan_try_send(h_.get(), &value); }
  std::optional<T> do_recv() const {
    Slot<T> slot;
    return slot.take(chan_recv(h_.get(), slot.raw()));
  }
  std::optional<T> do_try_recv() const {
    Slot<T> slot;
    return slot.take(chan_try_recv(h_.get(), slot.raw()));
  }
  void do_close() { chan_close(h_.get()); }

  ChanHandle h_;
};
}  // namespace detail

template <class T>
class Chan : public detail::ChanOps<T> {
  static_assert(std::is_move_constructible_v<T>, "goro::Chan<T> needs a move-constructible T");
  // Values move between goroutines' stacks after the channel's lock is released, where a
  // throwing move could neither be undone nor reported to both sides.
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "goro::Chan<T> needs a T whose move constructor is noexcept (wrap the value "
                "in std::unique_ptr, or mark its move constructor noexcept)");
  using Base = detail::ChanOps<T>;

 public:
  // make(chan T): unbuffered.
  Chan() : Base(detail::ChanHandle(detail::chan_make(&detail::elem_ops_for<T>, 0))) {}
  // make(chan T, capacity); 0 = unbuffered.
  explicit Chan(std::size_t capacity)
      : Base(detail::ChanHandle(detail::chan_make(&detail::elem_ops_for<T>, capacity))) {}
  // Any integer type, so that Chan<T>(0) is a capacity and not the nil channel.
  template <std::integral I>
  requires(!std::same_as<I, std::size_t> && !std::same_as<I, bool>) explicit Chan(I capacity)
      : Chan(checked(capacity)) {}
  // A nil channel: blocks forever, its select cases never fire.
  Chan(std::nullptr_t) noexcept {}

  void send(T value) { this->do_send(std::move(value)); }
  std::optional<T> recv() { return this->do_recv(); }
  bool try_send(T value) { return this->do_try_send(std::move(value)); }
  std::optional<T> try_recv() { return this->do_try_recv(); }
  void close() { this->do_close(); }

  ChanIterator<T> begin() { return ChanIterator<T>(this->h_); }
  typename ChanIterator<T>::Sentinel end() { return {}; }

  friend bool operator==(const Chan& a, const Chan& b) noexcept { return a.core() == b.core(); }

 private:
  friend class SendChan<T>;
  friend class RecvChan<T>;
  template <class I>
  static std::size_t checked(I capacity) {
    if constexpr (std::is_signed_v<I>) {
      if (capacity < 0) throw std::invalid_argument("makechan: size out of range");
    }
    return static_cast<std::size_t>(capacity);
  }
};

// Send-only view of a channel (Go's chan<- T).
template <class T>
class SendChan : public detail::ChanOps<T> {
 public:
  SendChan() noexcept = default;  // nil
  SendChan(std::nullptr_t) noexcept {}
  SendChan(const Chan<T>& c) noexcept : detail::ChanOps<T>(c.h_) {}

  void send(T value) { this->do_send(std::move(value)); }
  bool try_send(T value) { return this->do_try_send(std::move(value)); }
  void close() { this->do_close(); }
  friend bool operator==(const SendChan& a, const SendChan& b) noexcept {
    return a.core() == b.core();
  }
};

// Receive-only view of a channel (Go's <-chan T).
template <class T>
class RecvChan : public detail::ChanOps<T> {
 public:
  RecvChan() noexcept = default;  // nil
  RecvChan(std::nullptr_t) noexcept {}
  RecvChan(const Chan<T>& c) noexcept : detail::ChanOps<T>(c.h_) {}

  std::optional<T> recv() { return this->do_recv(); }
  std::optional<T> try_recv() { return this->do_try_recv(); }
  ChanIterator<T> begin() { return ChanIterator<T>(this->h_); }
  typename ChanIterator<T>::Sentinel end() { return {}; }
  friend bool operator==(const RecvChan& a, const RecvChan& b) noexcept {
    return a.core() == b.core();
  }
};

}  // namespace goro
