// goro internal: an intrusive doubly-linked FIFO of nodes with next/prev links. The nodes
// live on parked goroutines' stacks; the queue is guarded by its owner's lock (a channel's,
// or a semaphore-table bucket's).
#pragma once

namespace goro::detail {

template <class Node>
struct IntrusiveFifo {
  Node* head = nullptr;
  Node* tail = nullptr;
  bool empty() const noexcept { return head == nullptr; }
  void push_back(Node* w) noexcept {
    w->next = nullptr;
    w->prev = tail;
    if (tail) {
      tail->next = w;
    } else {
      head = w;
    }
    tail = w;
  }
  void push_front(Node* w) noexcept {
    w->prev = nullptr;
    w->next = head;
    if (head) {
      head->prev = w;
    } else {
      tail = w;
    }
    head = w;
  }
  Node* pop_front() noexcept {
    Node* w = head;
    if (w) remove(w);
    return w;
  }
  void remove(Node* w) noexcept {
    if (w->prev) {
      w->prev->next = w->next;
    } else {
      head = w->next;
    }
    if (w->next) {
      w->next->prev = w->prev;
    } else {
      tail = w->prev;
    }
    w->next = w->prev = nullptr;
  }
};

}  // namespace goro::detail
