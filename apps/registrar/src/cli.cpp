// registrar command line: course add|set|remove|list, register, unregister, list, gen-roster.
#include "cli.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <goro/goro.hpp>
#include <memory>
#include <string>
#include <variant>

#include "generate.hpp"
#include "output.hpp"
#include "pipeline.hpp"
#include "roster.hpp"
#include "store.hpp"
#include "validate.hpp"

namespace registrar {

namespace {

using namespace std::chrono_literals;

// A mistake of the user's that is not a command-line syntax error (exit status 1).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Global {
  std::string db = "registrar.db";
  int busy_timeout_ms = 3000;
};

// The reader of our output went away (`registrar list ... | head`): stop writing, quietly.
struct OutputClosed {};

std::string errno_text() { return std::strerror(errno); }

// An output file (or stdout for "" / "-"), closed at scope end.
class OutFile {
 public:
  explicit OutFile(const std::string& path) {
    if (path.empty() || path == "-") return;
    file_ = std::fopen(path.c_str(), "wb");
    if (!file_) throw UsageError("cannot write '" + path + "': " + errno_text());
  }
  ~OutFile() {
    if (file_) std::fclose(file_);
  }
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;
  std::FILE* get() const { return file_ ? file_ : stdout; }
  bool is_file() const { return file_ != nullptr; }
  // Flushes and closes; throws if the data did not make it.
  void close(const std::string& path) {
    std::FILE* f = get();
    bool ok = std::fflush(f) == 0;
    if (file_) {
      ok = std::fclose(file_) == 0 && ok;
      file_ = nullptr;
    }
    if (!ok && errno == EPIPE) throw OutputClosed{};
    if (!ok)
      throw UsageError("cannot write '" + (path.empty() ? "-" : path) + "': " + errno_text());
  }

 private:
  std::FILE* file_ = nullptr;
};

void write_all(std::FILE* f, std::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), f) != text.size()) {
    if (errno == EPIPE) throw OutputClosed{};
    throw UsageError("cannot write output: " + errno_text());
  }
}

OutputFormat output_format(const std::string& name) {
  if (auto f = output_format_from_name(name)) return *f;
  throw UsageError("unknown output format '" + name + "'");
}

std::unique_ptr<Store> open_existing(const Global& g) {
  return std::make_unique<Store>(g.db, StoreOptions{false, g.busy_timeout_ms});
}

Course require_course(Store& store, const std::string& name) {
  if (auto c = store.find_course(name)) return *c;
  throw UsageError("unknown course '" + name + "' in '" + store.path() +
                   "' (create it with: registrar course add \"" + name + "\" --capacity N)");
}

// ---- course add / course list / list ---------------------------------------------------

int cmd_course_add(const Global& g, const std::string& name, std::int64_t capacity) {
  if (name.empty()) throw UsageError("a course needs a name");
  Store store(g.db, StoreOptions{true, g.busy_timeout_ms});
  Course c = store.add_course(name, capacity);
  std::printf("created course '%s' (id %lld, capacity %lld) in %s\n", c.name.c_str(),
              static_cast<long long>(c.id), static_cast<long long>(c.capacity), g.db.c_str());
  return 0;
}

int cmd_course_set(const Global& g, const std::string& name, std::int64_t capacity) {
  auto store = open_existing(g);
  require_course(*store, name);
  store->set_capacity(name, capacity);
  std::printf("course '%s' now has capacity %lld\n", name.c_str(),
              static_cast<long long>(capacity));
  return 0;
}

int cmd_course_remove(const Global& g, const std::string& name, bool force) {
  auto store = open_existing(g);
  require_course(*store, name);
  std::int64_t n = store->remove_course(name, force);
  std::printf("removed course '%s' (%lld registrations deleted)\n", name.c_str(),
              static_cast<long long>(n));
  return 0;
}

int cmd_course_list(const Global& g, const std::string& format) {
  OutputFormat f = output_format(format);
  auto store = open_existing(g);
  write_all(stdout, format_courses(store->courses(), f));
  return 0;
}

// Streams the registrations from the database to the output in 64 KiB writes: memory stays
// flat whatever the size of the course.
int cmd_list(const Global& g, const std::string& course_name, const std::string& format,
             const std::string& out_path) {
  OutputFormat f = output_format(format);
  OutFile out(out_path);
  auto store = open_existing(g);
  Course course = require_course(*store, course_name);
  RegistrationFormatter formatter(f);
  std::string buf;
  formatter.begin(buf);
  store->for_each_registration(course.id, [&](const Registration& r) {
    formatter.row(r, buf);
    if (buf.size() >= (1 << 16)) {
      write_all(out.get(), buf);
      buf.clear();
    }
  });
  formatter.end(buf);
  write_all(out.get(), buf);
  out.close(out_path);
  return 0;
}

// ---- gen-roster -----------------------------------------------------------------------

int cmd_gen(GenOptions options, const std::string& format, const std::string& out_path) {
  auto f = input_format_from_name(format);
  if (!f) throw UsageError("unknown roster format '" + format + "'");
  options.format = *f;
  OutFile out(out_path);
  GenStats s = generate_roster(options, [&](std::string_view text) { write_all(out.get(), text); });
  out.close(out_path);
  std::fprintf(
      stderr, "gen-roster: %llu rows (%llu registrable, %llu invalid, %llu duplicates) to %s\n",
      static_cast<unsigned long long>(s.rows), static_cast<unsigned long long>(s.valid_unique),
      static_cast<unsigned long long>(s.invalid), static_cast<unsigned long long>(s.duplicates),
      out.is_file() || (!out_path.empty() && out_path != "-") ? out_path.c_str() : "stdout");
  return 0;
}

// ---- register -------------------------------------------------------------------------

struct RegisterArgs {
  std::string course;
  std::string roster;
  std::string input_format;
  std::string format = "table";
  std::string out;
  int validators = 0;
  std::size_t txn_rows = 1000;
  bool no_progress = false;
  bool dry_run = false;
  bool strict = false;
  std::string summary_format = "text";
};

// Reads from a file descriptor, retrying on EINTR. Runs under goro::blocking.
std::size_t read_fd(int fd, const std::string& name, char* buf, std::size_t cap) {
  while (true) {
    ssize_t n = ::read(fd, buf, cap);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) throw UsageError("cannot read roster '" + name + "': " + errno_text());
  }
}

InputFormat resolve_format(const RegisterArgs& a, std::string_view head) {
  if (!a.input_format.empty()) return *input_format_from_name(a.input_format);
  if (a.roster != "-") {
    if (auto f = input_format_from_extension(a.roster)) return *f;
    if (has_json_extension(a.roster)) {
      InputFormat f = sniff_input_format(head);
      return f == InputFormat::csv ? InputFormat::json : f;  // let the JSON parser complain
    }
  }
  return sniff_input_format(head);
}

// Redraws "[#####.....] 45% 45000/100000" on stderr every 100 ms until `stop` is closed.
void progress_loop(const Progress& p, goro::Chan<std::monostate> stop) {
  goro::Ticker ticker(100ms);
  auto start = std::chrono::steady_clock::now();
  bool running = true;
  while (running) {
    goro::select(goro::on_recv(ticker.chan()),
                 goro::on_recv(stop, [&](std::optional<std::monostate>) { running = false; }));
    if (!running) break;
    std::uint64_t done = p.done, parsed = p.parsed;
    bool final_total = p.input_done;
    double frac = parsed ? static_cast<double>(done) / static_cast<double>(parsed) : 0.0;
    if (!final_total && p.input_size > 0)  // scale by how much of the input was read
      frac *= std::min(1.0, static_cast<double>(p.bytes_read) / static_cast<double>(p.input_size));
    if (!final_total) frac = std::min(frac, 0.99);
    constexpr int kWidth = 30;
    int fill = static_cast<int>(frac * kWidth);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "\r[%.*s%.*s] %3d%%  %llu/%llu%s rows  %.0f rows/s ", fill,
                 "##############################", kWidth - fill, "..............................",
                 static_cast<int>(frac * 100), static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(parsed), final_total ? "" : "+",
                 secs > 0 ? static_cast<double>(done) / secs : 0.0);
    std::fflush(stderr);
  }
  ticker.stop();
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

// Exit statuses of `register` besides 0 and 1.
constexpr int kExitRowsFailed = 3;  // --strict and at least one row failed

int register_main(const Global& g, const RegisterArgs& a, OutFile& out, const goro::Context& ctx,
                  const std::atomic<int>& signal_number) {
  int fd = 0;
  struct CloseFd {
    int& fd;
    ~CloseFd() {
      if (fd > 0) ::close(fd);
    }
  } close_fd{fd};
  if (a.roster != "-") {
    fd = ::open(a.roster.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw UsageError("cannot read roster '" + a.roster + "': " + errno_text());
  }

  std::unique_ptr<Store> store;
  struct CloseStore {  // closing checkpoints the WAL: a blocking call too
    std::unique_ptr<Store>& s;
    ~CloseStore() {
      if (s) goro::blocking([&] { s.reset(); });
    }
  } close_store{store};
  Course course = goro::blocking([&] {
    store = std::make_unique<Store>(g.db, StoreOptions{false, g.busy_timeout_ms, a.dry_run});
    return require_course(*store, a.course);
  });

  // Sniff the format from the first bytes (at least one non-space character or EOF).
  std::string head;
  while (head.size() < 4096 && head.find_first_not_of(" \t\r\n") == std::string::npos) {
    char buf[4096];
    std::size_t n = goro::blocking([&] { return read_fd(fd, a.roster, buf, sizeof buf); });
    if (n == 0) break;
    head.append(buf, n);
  }
  InputFormat format = resolve_format(a, head);
  ReadFn read = [head = std::move(head), pos = std::size_t{0}, fd, name = a.roster](
                    char* buf, std::size_t cap) mutable -> std::size_t {
    if (pos < head.size()) {
      std::size_t n = std::min(cap, head.size() - pos);
      std::memcpy(buf, head.data() + pos, n);
      pos += n;
      return n;
    }
    return read_fd(fd, name, buf, cap);
  };

  Progress progress;
  if (struct stat st; ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
    progress.input_size = static_cast<std::uint64_t>(st.st_size);
  PipelineConfig cfg;
  cfg.validators = a.validators;
  cfg.txn_rows = a.txn_rows;
  cfg.progress = &progress;
  cfg.dry_run = a.dry_run;
  cfg.parent = ctx;
  goro::Chan<std::monostate> stop_progress;
  goro::WaitGroup progress_done;
  if (!a.no_progress && ::isatty(STDERR_FILENO))
    progress_done.go([&] { progress_loop(progress, stop_progress); });
  struct StopProgress {
    goro::Chan<std::monostate>& stop;
    goro::WaitGroup& done;
    ~StopProgress() {
      stop.close();
      done.wait();
    }
  };
  Summary summary;
  bool results_closed = false;
  {
    StopProgress stopper{stop_progress, progress_done};
    FileSink sink(out.get(), output_format(a.format), position_label(format));
    summary = register_roster(*store, course.id, format, std::move(read), sink, cfg);
    results_closed = sink.broken();
  }
  try {
    out.close(a.out);
  } catch (const OutputClosed&) {
    results_closed = true;
  }
  // With --out the results are in the file, so the summary goes to stdout; without, the
  // results are on stdout and the summary goes to stderr.
  const bool to_file = out.is_file() || (!a.out.empty() && a.out != "-");
  std::string text = a.summary_format == "json" ? format_summary_json(summary, course)
                                                : format_summary(summary, course);
  try {
    write_all(to_file ? stdout : stderr, text);
  } catch (const OutputClosed&) {
  }
  if (results_closed)
    std::fprintf(stderr,
                 "registrar: note: the results stream was closed by its reader (broken pipe); "
                 "results after that were dropped, registration went on to the end\n");
  if (summary.interrupted) {
    int sig = signal_number.load();
    std::fprintf(stderr,
                 "registrar: interrupted after %llu rows; run the same command again to "
                 "continue\n",
                 static_cast<unsigned long long>(summary.rows));
    return 128 + (sig > 0 ? sig : SIGINT);
  }
  if (a.strict && summary.failed() > 0) return kExitRowsFailed;
  return 0;
}

// SIGINT/SIGTERM without a netpoller: the signals are blocked in every thread (the mask is
// set before goro::run starts the runtime's threads, which inherit it) and read from a
// signalfd by a watcher goroutine, whose poll() runs in goro::blocking. A signal cancels
// the run's context (the pipeline stops at the next transaction boundary and flushes what
// it has). When the run is over, an eventfd wakes the watcher so that its blocking call
// returns (run() waits for blocking calls still running).
class SignalWatcher {
 public:
  SignalWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    sfd_ = ::signalfd(-1, &set_, SFD_CLOEXEC);
    efd_ = ::eventfd(0, EFD_CLOEXEC);
    if (sfd_ < 0 || efd_ < 0) throw UsageError("cannot watch signals: " + errno_text());
  }
  ~SignalWatcher() {
    ::close(sfd_);
    ::close(efd_);
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // Runs on a goroutine until stop() or the first signal, which calls on_signal() (a
  // second Ctrl-C waits for the transaction in flight like the first). Each poll() is
  // bounded (kPollMs): a goro::blocking helper is never held for long, so no other blocking
  // call can be stuck behind it in the helper pool's queue.
  void watch(const std::function<void()>& on_signal) {
    constexpr int kPollMs = 100;
    while (true) {
      int sig = goro::blocking([&] {
        pollfd fds[2] = {{sfd_, POLLIN, 0}, {efd_, POLLIN, 0}};
        if (::poll(fds, 2, kPollMs) <= 0) return -1;  // timeout or EINTR: poll again
        if (fds[1].revents & POLLIN) return 0;
        signalfd_siginfo info{};
        if (::read(sfd_, &info, sizeof info) != sizeof info) return -1;
        return static_cast<int>(info.ssi_signo);
      });
      if (sig == 0) return;
      if (sig > 0) {
        signal_.store(sig);
        on_signal();
        return;
      }
    }
  }
  void stop() {
    std::uint64_t one = 1;
    while (::write(efd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
  const std::atomic<int>& signal_number() const { return signal_; }

 private:
  sigset_t set_{}, old_{};
  int sfd_ = -1, efd_ = -1;
  std::atomic<int> signal_{0};
};

int cmd_register(const Global& g, const RegisterArgs& a) {
  output_format(a.format);  // validate before touching anything
  OutFile out(a.out);
  SignalWatcher signals;  // before goro::run: its threads inherit the signal mask
  return goro::run([&]() -> int {
    // (No structured bindings: lambdas capture them only from clang 16 on.)
    auto cancellable = goro::with_cancel(goro::Context::background());
    const goro::Context ctx = cancellable.first;
    const std::function<void()> cancel = cancellable.second;
    goro::WaitGroup watcher;
    watcher.go([&, cancel = cancel] { signals.watch(cancel); });
    int status = 1;
    try {
      status = register_main(g, a, out, ctx, signals.signal_number());
    } catch (const std::exception& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "registrar: error: %s\n", e.what());
    }
    signals.stop();
    watcher.wait();
    cancel();
    return status;
  });
}

// ---- unregister -----------------------------------------------------------------------

int cmd_unregister(const Global& g, const std::string& course_name, std::vector<std::string> ids,
                   const std::string& roster) {
  if (!roster.empty()) {
    int fd = roster == "-" ? 0 : ::open(roster.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw UsageError("cannot read roster '" + roster + "': " + errno_text());
    std::string text;
    char buf[1 << 16];
    std::size_t n;
    while ((n = read_fd(fd, roster, buf, sizeof buf)) > 0) text.append(buf, n);
    if (fd > 0) ::close(fd);
    RegisterArgs a;
    a.roster = roster;
    for (RosterRow& row : parse_roster(text, resolve_format(a, text))) {
      validate_row(row);
      if (!row.student_id.empty() &&
          (row.outcome == Outcome::pending || row.outcome == Outcome::missing_name ||
           row.outcome == Outcome::bad_email))
        ids.push_back(std::move(row.student_id));
    }
  }
  if (ids.empty()) throw UsageError("unregister: no student ids (give IDs or --roster FILE)");
  auto store = open_existing(g);
  Course course = require_course(*store, course_name);
  std::vector<bool> removed = store->unregister(course.id, ids);
  std::string out;
  std::size_t n_removed = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    out += echo_value(ids[i]) + (removed[i] ? " unregistered\n" : " not_registered\n");
    n_removed += removed[i];
  }
  try {
    write_all(stdout, out);
  } catch (const OutputClosed&) {
  }
  std::fprintf(stderr, "unregistered %zu of %zu students from '%s'\n", n_removed, ids.size(),
               course.name.c_str());
  return 0;
}

// A whole number in [min, max], with a plain message (CLI11's own numeric validators print
// the range of a double, and its conversions clamp an overflow silently).
CLI::Validator integer(long long min, long long max) {
  std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  return CLI::Validator(
      [min, max, range](std::string& text) -> std::string {
        long long v = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max)
          return "must be " + range + ", not '" + echo_value(text) + "'";
        return {};
      },
      "INT", "integer");
}

constexpr const char* kHelpFooter =
    R"(Rules (register): each roster row gets one result, in input order:
  registered, already_registered, course_full (capacity checked in the same transaction),
  missing_id, missing_name, bad_email, too_long (id > 64 bytes, name/email > 320),
  duplicate_id (same id on an earlier valid row), malformed (broken CSV quoting, wrong
  field count, invalid UTF-8 or NUL, invalid JSON). CSV needs a header naming
  student_id, name, email.

Exit status:
  0    done (register: even if some rows failed; they are results)
  1    error: unknown course, unreadable or empty roster, database locked or unwritable,
       results not writable (e.g. disk full)
  3    register --strict: at least one row failed
  130  interrupted by SIGINT (Ctrl-C), 143 by SIGTERM: the transactions committed so far
       stay, their results are written; run the same command again to continue
  1xx  malformed command line (CLI11's codes)
A closed result stream (registrar register ... | head) stops the results, not the
registration.

Example:
  registrar course add "Intro to Golang" --capacity 500
  registrar register --course "Intro to Golang" --dry-run roster.csv
  registrar register --course "Intro to Golang" --strict --out results.csv roster.csv
  registrar list --course "Intro to Golang" --format csv)";

}  // namespace

int run_cli(int argc, char** argv) {
  // A reader that goes away (| head) is an EPIPE on write, handled where we write.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"registrar: bulk course registration into SQLite, as a goroutine pipeline (goro)"};
  app.set_version_flag("--version", std::string("registrar ") + REGISTRAR_VERSION);
  app.footer(kHelpFooter);
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  Global g;
  app.add_option("--db", g.db, "SQLite database file")->capture_default_str();
  app.add_option("--busy-timeout", g.busy_timeout_ms,
                 "milliseconds to wait for another writer before giving up")
      ->capture_default_str()
      ->check(integer(0, 86400000));

  auto* course = app.add_subcommand("course", "manage courses");
  course->require_subcommand(1);
  std::string course_name;
  std::int64_t capacity = 0;
  auto* course_add = course->add_subcommand("add", "create a course");
  course_add->add_option("name", course_name, "course name")->required();
  course_add->add_option("--capacity", capacity, "seats")->required()->check(integer(0, INT64_MAX));
  auto* course_set = course->add_subcommand("set", "change the capacity of a course");
  course_set->add_option("name", course_name, "course name")->required();
  course_set->add_option("--capacity", capacity, "seats (not below the registrations)")
      ->required()
      ->check(integer(0, INT64_MAX));
  bool force = false;
  auto* course_remove = course->add_subcommand("remove", "delete a course");
  course_remove->add_option("name", course_name, "course name")->required();
  course_remove->add_flag("--force", force, "also when it has registrations (deletes them)");
  std::string course_format = "table";
  auto* course_list = course->add_subcommand("list", "list courses with their seat counts");
  course_list->add_option("--format", course_format, "table|csv|json")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();

  RegisterArgs reg;
  auto* reg_cmd = app.add_subcommand("register", "register the students of a roster");
  reg_cmd->add_option("--course", reg.course, "course name")->required();
  reg_cmd->add_option("roster", reg.roster, "roster file (CSV, JSON array, NDJSON) or - for stdin")
      ->required();
  reg_cmd->add_option("--input-format", reg.input_format, "force csv|json|ndjson")
      ->check(CLI::IsMember({"csv", "json", "ndjson"}));
  reg_cmd->add_option("--format", reg.format, "results as table|csv|json")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  reg_cmd->add_option("--out", reg.out, "write results to FILE (summary then goes to stdout)");
  reg_cmd->add_option("--validators", reg.validators, "validator goroutines (0: 2 per worker)")
      ->check(integer(0, 1024));
  reg_cmd->add_option("--txn-rows", reg.txn_rows, "registrations per transaction")
      ->check(integer(1, 1000000))
      ->capture_default_str();
  reg_cmd->add_flag("--no-progress", reg.no_progress, "no progress bar even on a terminal");
  reg_cmd->add_flag("--dry-run", reg.dry_run,
                    "parse, validate and check against the database; write nothing");
  reg_cmd->add_flag("--strict", reg.strict, "exit status 3 when any row failed");
  reg_cmd->add_option("--summary-format", reg.summary_format, "text|json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  std::string unreg_course, unreg_roster;
  std::vector<std::string> unreg_ids;
  auto* unreg_cmd = app.add_subcommand("unregister", "unregister students from a course");
  unreg_cmd->add_option("--course", unreg_course, "course name")->required();
  unreg_cmd->add_option("--roster", unreg_roster, "the student ids of this roster (- for stdin)");
  unreg_cmd->add_option("ids", unreg_ids, "student ids");

  std::string list_course, list_format = "table", list_out;
  auto* list_cmd = app.add_subcommand("list", "list the students registered for a course");
  list_cmd->add_option("--course", list_course, "course name")->required();
  list_cmd->add_option("--format", list_format, "table|csv|json")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  list_cmd->add_option("--out", list_out, "write to FILE");

  GenOptions gen;
  std::string gen_format = "csv", gen_out = "-";
  auto* gen_cmd = app.add_subcommand("gen-roster", "write a deterministic synthetic roster");
  gen_cmd->add_option("--count", gen.count, "rows")
      ->check(integer(0, INT64_MAX))
      ->capture_default_str();
  gen_cmd->add_option("--seed", gen.seed, "random seed")
      ->check(integer(0, INT64_MAX))
      ->capture_default_str();
  gen_cmd->add_option("--format", gen_format, "csv|json|ndjson")
      ->check(CLI::IsMember({"csv", "json", "ndjson"}))
      ->capture_default_str();
  gen_cmd->add_option("--out", gen_out, "output file (- for stdout)")->capture_default_str();
  gen_cmd->add_option("--invalid-permille", gen.invalid_permille, "invalid rows per 1000")
      ->check(integer(0, 1000))
      ->capture_default_str();
  gen_cmd
      ->add_option("--duplicate-permille", gen.duplicate_permille,
                   "rows repeating an earlier student, per 1000")
      ->check(integer(0, 1000))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (*course_add) return cmd_course_add(g, course_name, capacity);
    if (*course_set) return cmd_course_set(g, course_name, capacity);
    if (*course_remove) return cmd_course_remove(g, course_name, force);
    if (*course_list) return cmd_course_list(g, course_format);
    if (*reg_cmd) return cmd_register(g, reg);
    if (*unreg_cmd) return cmd_unregister(g, unreg_course, unreg_ids, unreg_roster);
    if (*list_cmd) return cmd_list(g, list_course, list_format, list_out);
    if (*gen_cmd) return cmd_gen(gen, gen_format, gen_out);
  } catch (const OutputClosed&) {
    return 0;  // the reader has what it wanted
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "registrar: error: %s\n", e.what());
    return 1;
  }
  return 1;
}

}  // namespace registrar
