// redis_clients: a C client library (hiredis) driven in non-blocking mode by goroutines, the
// way database clients plug into goro: the library owns its socket and its buffers, and
// goro::net::wait_readable / wait_writable park the goroutine (not the worker) whenever the
// library would block. 100 goroutines, each with its own connection, INCR one shared
// counter 100 times and SET/GET a key of their own.
//
//   redis_clients                    against a miniature in-process RESP server (for tests)
//   redis_clients --addr HOST:PORT   against a real Redis (the counter key is "goro:counter")
//
// The same pattern serves libpq: PQsocket + PQconnectPoll / PQflush / PQconsumeInput, with
// wait_readable/wait_writable where the libpq manual says to select().
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <goro/goro.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

// ---- a goroutine-friendly hiredis connection ----

struct RedisError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

class Redis {
 public:
  Redis(const std::string& host, int port, goro::Clock::duration timeout = 5s)
      : c_(redisConnectNonBlock(host.c_str(), port)), timeout_(timeout) {
    if (c_ == nullptr) throw RedisError("redis: out of memory");
    if (c_->err != 0) fail("connect");
    // A non-blocking connect completes when the socket turns writable; SO_ERROR says how.
    goro::net::wait_writable(c_->fd, goro::Clock::now() + timeout_);
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c_->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) throw RedisError(std::string("redis: connect: ") + std::strerror(err));
  }
  ~Redis() { redisFree(c_); }
  Redis(const Redis&) = delete;
  Redis& operator=(const Redis&) = delete;

  // One command, hiredis's printf-like format; parks while the socket is not ready.
  template <class... Args>
  Reply command(const char* format, Args... args) {
    if (redisAppendCommand(c_, format, args...) != REDIS_OK) fail("append");
    flush();
    return read_reply();
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw RedisError(std::string("redis: ") + what + ": " + c_->errstr);
  }
  void flush() {
    for (int done = 0; !done;) {
      if (redisBufferWrite(c_, &done) != REDIS_OK) fail("write");
      if (!done) goro::net::wait_writable(c_->fd, goro::Clock::now() + timeout_);
    }
  }
  Reply read_reply() {
    for (;;) {
      void* reply = nullptr;
      if (redisGetReplyFromReader(c_, &reply) != REDIS_OK) fail("protocol");
      if (reply != nullptr) return Reply(static_cast<redisReply*>(reply));
      goro::net::wait_readable(c_->fd, goro::Clock::now() + timeout_);
      if (redisBufferRead(c_) != REDIS_OK) fail("read");  // EAGAIN is not an error here
    }
  }

  redisContext* c_;
  goro::Clock::duration timeout_;
};

// ---- a miniature RESP server (PING, SET, GET, INCR, DEL), a goroutine per connection ----

class MiniRedis {
 public:
  MiniRedis() : ln_(goro::net::listen("tcp", "127.0.0.1:0")) {}
  std::string addr() const { return ln_.addr(); }
  void close() { ln_.close(); }

  void serve() {
    for (;;) {
      goro::net::Conn c;
      try {
        c = ln_.accept();
      } catch (const goro::net::Error&) {
        return;  // closed
      }
      goro::go([this, c = std::move(c)]() mutable {
        try {
          session(c);
        } catch (const goro::net::Error&) {
          // the client went away mid-command
        }
      });
    }
  }

 private:
  // Reads RESP arrays of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") and answers them.
  void session(goro::net::Conn& c) {
    std::string in;
    std::size_t pos = 0;
    auto fill = [&]() -> bool {
      std::byte buf[4096];
      std::size_t n = c.read(buf);
      in.append(reinterpret_cast<const char*>(buf), n);
      return n != 0;
    };
    auto line = [&](std::string& out) -> bool {
      for (;;) {
        std::size_t eol = in.find("\r\n", pos);
        if (eol != std::string::npos) {
          out = in.substr(pos, eol - pos);
          pos = eol + 2;
          return true;
        }
        if (!fill()) return false;
      }
    };
    for (;;) {
      if (pos > 65536) {
        in.erase(0, pos);
        pos = 0;
      }
      std::string header;
      if (!line(header)) return;
      if (header.empty() || header[0] != '*') return c.write("-ERR protocol\r\n"), void();
      const int argc = std::atoi(header.c_str() + 1);
      std::vector<std::string> argv;
      for (int i = 0; i < argc; ++i) {
        std::string len_line;
        if (!line(len_line) || len_line.empty() || len_line[0] != '$') return;
        const std::size_t len = std::strtoul(len_line.c_str() + 1, nullptr, 10);
        while (in.size() < pos + len + 2) {
          if (!fill()) return;
        }
        argv.push_back(in.substr(pos, len));
        pos += len + 2;
      }
      c.write(answer(argv));
    }
  }

  std::string answer(const std::vector<std::string>& argv) {
    if (argv.empty()) return "-ERR empty command\r\n";
    const std::string& cmd = argv[0];
    std::lock_guard guard(mu_);
    if (cmd == "PING") return "+PONG\r\n";
    if (cmd == "SET" && argv.size() == 3) {
      data_[argv[1]] = argv[2];
      return "+OK\r\n";
    }
    if (cmd == "GET" && argv.size() == 2) {
      auto it = data_.find(argv[1]);
      if (it == data_.end()) return "$-1\r\n";
      return "$" + std::to_string(it->second.size()) + "\r\n" + it->second + "\r\n";
    }
    if (cmd == "INCR" && argv.size() == 2) {
      long long v = std::atoll(data_[argv[1]].c_str()) + 1;
      data_[argv[1]] = std::to_string(v);
      return ":" + std::to_string(v) + "\r\n";
    }
    if (cmd == "DEL" && argv.size() == 2)
      return ":" + std::to_string(data_.erase(argv[1])) + "\r\n";
    return "-ERR unknown command '" + cmd + "'\r\n";
  }

  goro::net::Listener ln_;
  goro::Mutex mu_;
  std::map<std::string, std::string> data_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string addr;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--addr" && i + 1 < argc) {
      addr = argv[++i];
    } else {
      std::fprintf(stderr, "usage: redis_clients [--addr HOST:PORT]\n");
      return 2;
    }
  }
  return goro::run([&] {
    std::unique_ptr<MiniRedis> mini;
    goro::WaitGroup server_done;
    if (addr.empty()) {
      mini = std::make_unique<MiniRedis>();
      addr = mini->addr();
      server_done.go([&] { mini->serve(); });
    }
    const std::size_t colon = addr.rfind(':');
    const std::string host = addr.substr(0, colon);
    const int port = std::atoi(addr.c_str() + colon + 1);

    constexpr int kClients = 100;
    constexpr int kIncrements = 100;
    {
      Redis admin(host, port);
      Reply pong = admin.command("PING");
      std::printf("PING -> %s\n", pong->str);
      admin.command("DEL %s", "goro:counter");
    }
    goro::ErrGroup group;
    for (int id = 0; id < kClients; ++id) {
      group.go([&, id] {
        Redis r(host, port);
        for (int i = 0; i < kIncrements; ++i) r.command("INCR %s", "goro:counter");
        const std::string key = "goro:client:" + std::to_string(id);
        r.command("SET %s %d", key.c_str(), id);
        Reply got = r.command("GET %s", key.c_str());
        if (got->type != REDIS_REPLY_STRING || std::atoi(got->str) != id) {
          throw RedisError("client " + std::to_string(id) + " read back the wrong value");
        }
        r.command("DEL %s", key.c_str());
      });
    }
    int status = 0;
    try {
      group.wait();
      Redis admin(host, port);
      Reply counter = admin.command("GET %s", "goro:counter");
      std::printf("%d clients x %d INCR: goro:counter = %s\n", kClients, kIncrements,
                  counter->type == REDIS_REPLY_STRING ? counter->str : "(nil)");
    } catch (const std::exception& e) {
      std::printf("error: %s\n", e.what());
      status = 1;
    }
    if (mini) {
      mini->close();
      server_done.wait();
    }
    return status;
  });
}
