// White-box tests of the runtime's internal structures, outside any run: the run queues,
// the intrusive waiter FIFO, the wait table and the timer heap (whose behaviour through the
// public Timer/Ticker API is in test_time.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "fifo.hpp"
#include "goro/sync.hpp"
#include "runq.hpp"
#include "scheduler.hpp"
#include "sema.hpp"
#include "timer_heap.hpp"

namespace goro::detail {
namespace {

struct RunQueueFixture : ::testing::Test {
  Runtime rt{1, 64 * 1024};
  P p;
  std::vector<std::unique_ptr<G>> gs;
  RunQueueFixture() {
    p.rt = &rt;
    rt.nprocs = 1;
    rt.ps.push_back(&p);
  }
  ~RunQueueFixture() override { rt.ps.clear(); }
  G* make() {
    gs.push_back(std::make_unique<G>());
    return gs.back().get();
  }
  std::size_t global_size() const { return rt.gq_size.load(); }
};

TEST_F(RunQueueFixture, LocalQueueIsFifoAndRunnextGoesFirst) {
  G* a = make();
  G* b = make();
  G* c = make();
  runq_put(&p, a, false);
  runq_put(&p, b, false);
  runq_put(&p, c, true);  // a hand-off: runs next
  EXPECT_FALSE(runq_empty(&p));
  EXPECT_EQ(runq_get(&p), c);
  EXPECT_EQ(runq_get(&p), a);
  EXPECT_EQ(runq_get(&p), b);
  EXPECT_EQ(runq_get(&p), nullptr);
  EXPECT_TRUE(runq_empty(&p));
}

TEST_F(RunQueueFixture, ANewRunnextPushesTheOldOneToTheTail) {
  G* a = make();
  G* b = make();
  G* c = make();
  runq_put(&p, a, false);
  runq_put(&p, b, true);
  runq_put(&p, c, true);  // b moves to the tail, behind a
  EXPECT_EQ(runq_get(&p), c);
  EXPECT_EQ(runq_get(&p), a);
  EXPECT_EQ(runq_get(&p), b);
}

TEST_F(RunQueueFixture, RunnextStreakIsBoundedSoTheQueueIsNotStarved) {
  G* queued = make();
  G* pair = make();
  runq_put(&p, queued, false);
  int streak = 0;
  for (;;) {
    runq_put(&p, pair, true);  // a hand-off pair keeps refilling runnext
    G* g = runq_get(&p);
    if (g == queued) break;
    ASSERT_EQ(g, pair);
    ASSERT_LT(++streak, 1000) << "the queued goroutine never ran";
  }
  EXPECT_GT(streak, 0);
}

TEST_F(RunQueueFixture, AFullQueueSpillsHalfToTheGlobalQueueInOrder) {
  std::vector<G*> put;
  for (std::uint32_t i = 0; i < kRunQueueSize + 1; ++i) {
    put.push_back(make());
    runq_put(&p, put.back(), false);
  }
  EXPECT_EQ(global_size(), kRunQueueSize / 2 + 1);
  // The global queue holds the oldest half (and the one that did not fit), in order.
  G* first = global_get(&p, 1);
  EXPECT_EQ(first, put[0]);
  std::vector<G*> seen{first};
  while (G* g = runq_get(&p)) seen.push_back(g);
  while (G* g = global_get(&p, kRunQueueSize)) {
    seen.push_back(g);
    while (G* h = runq_get(&p)) seen.push_back(h);
  }
  EXPECT_EQ(seen.size(), put.size());
  EXPECT_EQ(global_size(), 0u);
}

TEST_F(RunQueueFixture, StealingTakesHalfFromTheHead) {
  P victim;
  victim.rt = &rt;
  std::vector<G*> put;
  for (int i = 0; i < 10; ++i) {
    put.push_back(make());
    runq_put(&victim, put.back(), false);
  }
  G* batch[kRunQueueSize / 2];
  std::uint32_t n = runq_grab(&victim, batch, false);
  ASSERT_EQ(n, 5u);
  for (std::uint32_t i = 0; i < n; ++i) EXPECT_EQ(batch[i], put[i]);
  EXPECT_EQ(runq_get(&victim), put[5]);
}

TEST_F(RunQueueFixture, RunnextIsStolenOnlyWhenAskedAndWhenItIsAllThereIs) {
  P victim;
  victim.rt = &rt;
  G* next = make();
  runq_put(&victim, next, true);
  G* batch[kRunQueueSize / 2];
  EXPECT_EQ(runq_grab(&victim, batch, false), 0u);
  ASSERT_EQ(runq_grab(&victim, batch, true), 1u);
  EXPECT_EQ(batch[0], next);
  EXPECT_TRUE(runq_empty(&victim));
}

struct Node {
  int v = 0;
  Node* next = nullptr;
  Node* prev = nullptr;
};

TEST(IntrusiveFifo, PushPopRemoveKeepOrderAndLinks) {
  Node n[5];
  for (int i = 0; i < 5; ++i) n[i].v = i;
  IntrusiveFifo<Node> q;
  EXPECT_TRUE(q.empty());
  for (Node& x : n) q.push_back(&x);
  q.remove(&n[2]);  // middle
  q.remove(&n[4]);  // tail
  q.push_front(&n[4]);
  EXPECT_EQ(n[2].next, nullptr);
  EXPECT_EQ(n[2].prev, nullptr);
  std::vector<int> order;
  while (Node* x = q.pop_front()) order.push_back(x->v);
  EXPECT_EQ(order, (std::vector<int>{4, 0, 1, 3}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.tail, nullptr);
}

TEST(WaitTable, EachKeyAndKindHasItsOwnFifo) {
  int a = 0;
  int b = 0;
  SemaBucket bucket;
  SemaWaiter w[6];
  for (SemaWaiter& x : w) x.key = &a;
  w[0].key = &b;
  w[1].kind = SemaKind::writer;
  w[3].kind = SemaKind::reader;
  w[4].kind = SemaKind::writer;
  w[5].key = &b;
  LockGuard guard(bucket.mu);
  for (SemaWaiter& x : w) bucket.push_back(&x);
  EXPECT_EQ(bucket.first(&a), &w[2]);  // kind any: only w[2]
  EXPECT_EQ(bucket.next_of(&w[2], &a), nullptr);
  EXPECT_EQ(bucket.first(&a, SemaKind::writer), &w[1]);
  EXPECT_EQ(bucket.next_of(&w[1], &a, SemaKind::writer), &w[4]);
  EXPECT_EQ(bucket.first(&a, SemaKind::reader), &w[3]);
  EXPECT_EQ(bucket.first(&b), &w[0]);
  // Removing a head moves its queue to the next waiter; push_front takes the head back.
  bucket.remove(&w[0]);
  EXPECT_FALSE(bucket.queued(&w[0]));
  EXPECT_EQ(bucket.first(&b), &w[5]);
  bucket.push_front(&w[0]);
  EXPECT_EQ(bucket.first(&b), &w[0]);
  EXPECT_EQ(bucket.next_of(&w[0], &b), &w[5]);
  // Removing from the middle and the tail.
  bucket.remove(&w[4]);
  EXPECT_EQ(bucket.next_of(&w[1], &a, SemaKind::writer), nullptr);
  for (SemaWaiter& x : w) {
    if (bucket.queued(&x)) bucket.remove(&x);
  }
  EXPECT_TRUE(bucket.empty());
  for (const SemaWaiter& x : w) EXPECT_FALSE(bucket.queued(&x));
}

TEST(WaitTable, AKeyIsFoundBehindManyWaitersOfAnotherKey) {
  // Lookups find a key's queue, not its waiters: a key behind 10 000 waiters of another
  // key is found in as many steps as there are distinct keys in the bucket.
  int busy = 0;
  int other = 0;
  SemaBucket bucket;
  std::vector<SemaWaiter> crowd(10000);
  SemaWaiter mine;
  mine.key = &other;
  LockGuard guard(bucket.mu);
  for (SemaWaiter& x : crowd) {
    x.key = &busy;
    bucket.push_back(&x);
  }
  bucket.push_back(&mine);
  EXPECT_EQ(bucket.first(&other), &mine);
  EXPECT_EQ(bucket.first(&busy), &crowd[0]);
  bucket.remove(&mine);
  for (SemaWaiter& x : crowd) bucket.remove(&x);
  EXPECT_TRUE(bucket.empty());
}

TEST(WaitTable, SyncObjectsAreOneWord) {
  EXPECT_EQ(sizeof(goro::Mutex), 8u);
  EXPECT_EQ(sizeof(goro::RWMutex), 8u);
  EXPECT_EQ(sizeof(goro::WaitGroup), 8u);
  EXPECT_EQ(sizeof(goro::Cond), sizeof(void*));
}

// ---------------------------------------------------------------- the timer heap

// Nodes that are not reference counted (as sleep's), so the heap's bookkeeping is all that
// is exercised; `model` holds the deadline of every node the heap should hold.
struct TimerHeapFixture : ::testing::Test {
  TimerHeap heap;
  std::vector<std::unique_ptr<TimerNode>> nodes;
  std::vector<std::int64_t> model;  // -1: not armed
  TimerHeapFixture() {
    for (int i = 0; i < 300; ++i) {
      nodes.push_back(std::make_unique<TimerNode>());
      nodes.back()->owned = false;
      nodes.back()->kind = TimerNode::Kind::sleep;
      model.push_back(-1);
    }
  }
  // The heap's state agrees with the model: invariants, membership and both mirrors.
  void expect_matches_model() {
    LockGuard guard(heap.mu);
    ASSERT_TRUE(heap.check());
    std::int64_t earliest = kNoTimer;
    std::size_t armed = 0;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const bool in = nodes[i]->home.load() == &heap;
      ASSERT_EQ(in, model[i] >= 0) << "node " << i;
      if (!in) continue;
      ++armed;
      earliest = std::min(earliest, model[i]);
      ASSERT_EQ(heap.when_of(nodes[i].get()), model[i]);
    }
    EXPECT_EQ(heap.size(), armed);
    EXPECT_EQ(heap.armed(), armed);
    EXPECT_EQ(heap.next_when(), earliest);
  }
};

TEST_F(TimerHeapFixture, RandomAddRemoveResetKeepsOrderIndicesAndMirrors) {
  std::mt19937_64 rng(12345);
  for (int step = 0; step < 5000; ++step) {
    const std::size_t i = rng() % nodes.size();
    TimerNode* t = nodes[i].get();
    const std::int64_t when = static_cast<std::int64_t>(rng() % 1000);  // many ties
    {
      LockGuard guard(heap.mu);
      switch (rng() % 3) {
        case 0: {  // add (or, if armed, re-arm: remove then add, as arm() does)
          heap.remove(t);
          bool first = false;
          ASSERT_TRUE(heap.add(t, when, 0, &first));
          model[i] = when;
          EXPECT_EQ(first, heap.top() == t);
          break;
        }
        case 1:
          EXPECT_EQ(heap.remove(t), model[i] >= 0);
          model[i] = -1;
          break;
        case 2:  // remove of a node that is not there is refused
          if (model[i] < 0) {
            EXPECT_FALSE(heap.remove(t));
          }
          break;
      }
    }
    if (step % 97 == 0) expect_matches_model();
  }
  expect_matches_model();
  // Taking due timers yields them in deadline order, exactly those due, and leaves the
  // others armed.
  std::int64_t last = -1;
  std::size_t taken = 0;
  for (std::int64_t now = 0; now < 1000; now += 50) {
    TimerNode* due[8];
    for (;;) {
      std::size_t n;
      {
        LockGuard guard(heap.mu);
        n = heap.take_due(now, due, 8);
      }
      for (std::size_t k = 0; k < n; ++k) {
        const auto i = static_cast<std::size_t>(
            std::find_if(nodes.begin(), nodes.end(), [&](auto& p) { return p.get() == due[k]; }) -
            nodes.begin());
        ASSERT_LE(model[i], now);
        ASSERT_GE(model[i], last);
        last = model[i];
        EXPECT_EQ(due[k]->home.load(), nullptr);
        model[i] = -1;
        ++taken;
      }
      if (n < 8) break;
    }
    expect_matches_model();
    for (std::int64_t m : model) ASSERT_TRUE(m < 0 || m > now);
  }
  EXPECT_GT(taken, 0u);
}

TEST_F(TimerHeapFixture, ATickerStaysArmedAndSkipsLateTicks) {
  TimerNode* ticker = nodes[0].get();
  TimerNode* once = nodes[1].get();
  auto owned = std::make_unique<TimerNode>();  // a reference-counted ticker
  LockGuard guard(heap.mu);
  bool first = false;
  ASSERT_TRUE(heap.add(ticker, 100, 10, &first));
  EXPECT_TRUE(first);
  ASSERT_TRUE(heap.add(once, 120, 0, &first));
  EXPECT_FALSE(first);
  ASSERT_TRUE(heap.add(owned.get(), 101, 7, &first));
  TimerNode* due[4];
  // At 135 the ticker is three ticks late: it fires once and its next tick is 140.
  ASSERT_EQ(heap.take_due(135, due, 4), 3u);
  EXPECT_EQ(due[0], ticker);
  EXPECT_EQ(due[1], owned.get());
  EXPECT_EQ(due[2], once);
  EXPECT_EQ(heap.when_of(ticker), 140);
  EXPECT_EQ(heap.period_of(ticker), 10);
  EXPECT_EQ(heap.when_of(owned.get()), 136);  // 101 + 7 * 5
  EXPECT_EQ(once->home.load(), nullptr);
  EXPECT_EQ(ticker->home.load(), &heap);
  // The firing worker got its own reference to the owned ticker (the heap keeps its own).
  EXPECT_EQ(owned->refs.load(), 2);
  EXPECT_EQ(ticker->refs.load(), 1);  // not owned: untouched
  EXPECT_EQ(heap.next_when(), 136);
  EXPECT_EQ(heap.armed(), 2u);
  EXPECT_TRUE(heap.check());
  EXPECT_EQ(heap.take_due(135, due, 4), 0u);
  heap.remove(ticker);
  heap.remove(owned.get());
  EXPECT_EQ(heap.next_when(), kNoTimer);
  EXPECT_EQ(heap.armed(), 0u);
}

TEST_F(TimerHeapFixture, AClosedHeapRefusesAndAdoptionKeepsDeadlinesAndPeriods) {
  TimerHeap pending(LockRank::timer_pending);
  bool first = false;
  {
    LockGuard guard(pending.mu);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(pending.add(nodes[i].get(), 1000 - 10 * i, i % 5, &first));
    }
  }
  {
    LockGuard outer(pending.mu);
    LockGuard inner(heap.mu);
    ASSERT_TRUE(heap.add(nodes[60].get(), 995, 0, &first));
    EXPECT_TRUE(heap.adopt(pending));  // the earliest moved in: 1000 - 490
    EXPECT_EQ(pending.armed(), 0u);
    EXPECT_EQ(pending.next_when(), kNoTimer);
    EXPECT_TRUE(pending.check());
    EXPECT_TRUE(heap.check());
    EXPECT_EQ(heap.armed(), 51u);
    EXPECT_EQ(heap.next_when(), 510);
    for (int i = 0; i < 50; ++i) {
      EXPECT_EQ(nodes[i]->home.load(), &heap);
      EXPECT_EQ(heap.when_of(nodes[i].get()), 1000 - 10 * i);
      EXPECT_EQ(heap.period_of(nodes[i].get()), i % 5);
    }
  }
  LockGuard guard(heap.mu);
  std::vector<TimerNode*> drained;
  heap.close();
  heap.drain([&](TimerNode* t) { drained.push_back(t); });
  EXPECT_EQ(drained.size(), 51u);
  for (TimerNode* t : drained) EXPECT_EQ(t->home.load(), nullptr);
  EXPECT_EQ(heap.armed(), 0u);
  EXPECT_EQ(heap.next_when(), kNoTimer);
  EXPECT_FALSE(heap.add(nodes[0].get(), 5, 0, &first));
  EXPECT_EQ(nodes[0]->home.load(), nullptr);
  EXPECT_EQ(heap.armed(), 0u);
}

}  // namespace
}  // namespace goro::detail
