// registrar command line: course add|list, register, list, gen-roster.
#include "cli.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
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
    if (!ok)
      throw UsageError("cannot write '" + (path.empty() ? "-" : path) + "': " + errno_text());
  }

 private:
  std::FILE* file_ = nullptr;
};

void write_all(std::FILE* f, std::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), f) != text.size())
    throw UsageError("cannot write output: " + errno_text());
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

int cmd_course_list(const Global& g, const std::string& format) {
  OutputFormat f = output_format(format);
  auto store = open_existing(g);
  write_all(stdout, format_courses(store->courses(), f));
  return 0;
}

int cmd_list(const Global& g, const std::string& course_name, const std::string& format,
             const std::string& out_path) {
  OutputFormat f = output_format(format);
  OutFile out(out_path);
  auto store = open_existing(g);
  Course course = require_course(*store, course_name);
  write_all(out.get(), format_registrations(store->registrations(course.id), f));
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

int register_main(const Global& g, const RegisterArgs& a, OutFile& out) {
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
    store = open_existing(g);
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
  {
    StopProgress stopper{stop_progress, progress_done};
    FileSink sink(out.get(), output_format(a.format), position_label(format));
    summary = register_roster(*store, course.id, format, std::move(read), sink, cfg);
  }
  out.close(a.out);
  // With --out the results are in the file, so the summary goes to stdout; without, the
  // results are on stdout and the summary goes to stderr.
  std::string text = format_summary(summary, course);
  write_all(out.is_file() || (!a.out.empty() && a.out != "-") ? stdout : stderr, text);
  return 0;
}

int cmd_register(const Global& g, const RegisterArgs& a) {
  output_format(a.format);  // validate before touching anything
  OutFile out(a.out);
  return goro::run([&]() -> int {
    try {
      return register_main(g, a, out);
    } catch (const std::exception& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "registrar: error: %s\n", e.what());
      return 1;
    }
  });
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"registrar: bulk course registration into SQLite, as a goroutine pipeline (goro)"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  Global g;
  app.add_option("--db", g.db, "SQLite database file")->capture_default_str();
  app.add_option("--busy-timeout", g.busy_timeout_ms,
                 "milliseconds to wait for another writer before giving up")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);

  auto* course = app.add_subcommand("course", "manage courses");
  course->require_subcommand(1);
  std::string course_name;
  std::int64_t capacity = 0;
  auto* course_add = course->add_subcommand("add", "create a course");
  course_add->add_option("name", course_name, "course name")->required();
  course_add->add_option("--capacity", capacity, "seats")
      ->required()
      ->check(CLI::NonNegativeNumber);
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
      ->check(CLI::NonNegativeNumber);
  reg_cmd->add_option("--txn-rows", reg.txn_rows, "registrations per transaction")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  reg_cmd->add_flag("--no-progress", reg.no_progress, "no progress bar even on a terminal");

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
  gen_cmd->add_option("--count", gen.count, "rows")->capture_default_str();
  gen_cmd->add_option("--seed", gen.seed, "random seed")->capture_default_str();
  gen_cmd->add_option("--format", gen_format, "csv|json|ndjson")
      ->check(CLI::IsMember({"csv", "json", "ndjson"}))
      ->capture_default_str();
  gen_cmd->add_option("--out", gen_out, "output file (- for stdout)")->capture_default_str();
  gen_cmd->add_option("--invalid-permille", gen.invalid_permille, "invalid rows per 1000")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  gen_cmd
      ->add_option("--duplicate-permille", gen.duplicate_permille,
                   "rows repeating an earlier student, per 1000")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (*course_add) return cmd_course_add(g, course_name, capacity);
    if (*course_list) return cmd_course_list(g, course_format);
    if (*reg_cmd) return cmd_register(g, reg);
    if (*list_cmd) return cmd_list(g, list_course, list_format, list_out);
    if (*gen_cmd) return cmd_gen(gen, gen_format, gen_out);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "registrar: error: %s\n", e.what());
    return 1;
  }
  return 1;
}

}  // namespace registrar
