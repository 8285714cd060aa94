// consumer: mirrors the Go producer/consumer pair in which a producer goroutine publishes
// messages on a channel and a consumer goroutine stores each one:
//
//   func readAndSend(out chan<- Message) {        // the bug: nobody closes out
//       for _, m := range source { out <- m }
//   }
//   func consume(in <-chan Message, s *Store) {
//       for m := range in { s.Save(m) }          // ends only when in is closed
//   }
//
//   consumer            the fix: the producer closes the channel when it is done
//                       (defer close(out)), so the consumer's range-for ends
//   consumer --broken   read_and_send never closes it: the consumer waits for a message that
//                       never comes, main waits for the consumer, and the runtime reports
//                       "fatal error: all goroutines are asleep - deadlock!" (exit 2)
#include <cstdio>
#include <goro/goro.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

// Go's defer: runs f when the scope ends, however it ends.
template <class F>
class Defer {
 public:
  explicit Defer(F f) : f_(std::move(f)) {}
  Defer(const Defer&) = delete;
  Defer& operator=(const Defer&) = delete;
  ~Defer() { f_(); }

 private:
  F f_;
};

struct Message {
  int id;
  std::string body;
};

// Only the consumer goroutine touches the store, so it needs no lock.
class Store {
 public:
  void save(Message m) { messages_.push_back(std::move(m)); }
  const std::vector<Message>& messages() const { return messages_; }

 private:
  std::vector<Message> messages_;
};

const std::vector<std::string> kSource = {"order created", "order paid", "order packed",
                                          "order shipped", "order delivered"};

// The broken producer: sends everything and returns without closing.
void read_and_send(goro::SendChan<Message> out) {
  int id = 0;
  for (const std::string& body : kSource) out.send(Message{++id, body});
}

// The fixed producer: closes the channel on its way out, as `defer close(out)` does.
void produce(goro::SendChan<Message> out) {
  Defer close_out([&out] { out.close(); });
  int id = 0;
  for (const std::string& body : kSource) out.send(Message{++id, body});
}

void consume(goro::RecvChan<Message> in, Store* store) {
  for (Message m : in) {  // receives until the channel is closed
    std::printf("  stored message %d: %s\n", m.id, m.body.c_str());
    store->save(std::move(m));
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool broken = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--broken") {
      broken = true;
    } else {
      std::fprintf(stderr, "usage: %s [--broken]\n", argv[0]);
      return 64;
    }
  }

  // Line-buffered stdout: the lines printed before the --broken deadlock reach a pipe too (the
  // runtime ends the process on a fatal error).
  std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);

  return goro::run([broken] {
    goro::Chan<Message> messages;
    Store store;
    goro::WaitGroup wg;
    wg.go([broken, messages] { broken ? read_and_send(messages) : produce(messages); });
    wg.go([messages, &store] { consume(messages, &store); });
    wg.wait();
    std::printf("stored %zu messages\n", store.messages().size());
    return store.messages().size() == kSource.size() ? 0 : 1;
  });
}
