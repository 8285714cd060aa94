// White-box tests of the runtime's internal structures, outside any run: the run queues,
// the intrusive waiter FIFO and the wait table. (The timer heap is tested through the
// public Timer/Ticker API in test_time.cpp.)
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "fifo.hpp"
#include "goro/sync.hpp"
#include "runq.hpp"
#include "scheduler.hpp"
#include "sema.hpp"

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
  EXPECT_FALSE(w[0].enqueued);
  EXPECT_EQ(bucket.first(&b), &w[5]);
  bucket.push_front(&w[0]);
  EXPECT_EQ(bucket.first(&b), &w[0]);
  EXPECT_EQ(bucket.next_of(&w[0], &b), &w[5]);
  // Removing from the middle and the tail.
  bucket.remove(&w[4]);
  EXPECT_EQ(bucket.next_of(&w[1], &a, SemaKind::writer), nullptr);
  for (SemaWaiter& x : w) {
    if (x.enqueued) bucket.remove(&x);
  }
  EXPECT_TRUE(bucket.empty());
  for (const SemaWaiter& x : w) EXPECT_FALSE(x.enqueued);
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

}  // namespace
}  // namespace goro::detail
