// registrar pipeline: reader → validators → sequencer → writer → output, as goroutines over
// channels.
#include "pipeline.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <goro/goro.hpp>
#include <map>
#include <optional>
#include <utility>

#include "validate.hpp"

namespace registrar {

namespace {

using Clock = std::chrono::steady_clock;

struct Batch {
  std::uint64_t seq = 0;
  std::vector<RosterRow> rows;
};

// Goroutines that share the sending side of a channel (the validators).
struct Senders {
  explicit Senders(int n) : running(n) {}
  std::atomic<int> running;
  std::atomic<bool> failed{false};
};

// Closes a channel when the goroutine that owns its sending side ends (with `senders`: the last of
// them), however it ends. When a sender ends by an exception, the channel closes only once that
// exception has failed the group (so cancelled the run): a stage downstream must never take the end
// of its input for the end of the roster (the writer would commit the last, partial transaction).
template <class T>
class CloseOnExit {
 public:
  CloseOnExit(goro::ErrGroup& group, goro::Chan<T>& ch, Senders* senders = nullptr)
      : group_(group), ch_(ch), senders_(senders) {}
  CloseOnExit(const CloseOnExit&) = delete;
  CloseOnExit& operator=(const CloseOnExit&) = delete;
  ~CloseOnExit() {
    bool failed = std::uncaught_exceptions() > exceptions_;
    if (senders_) {
      if (failed) senders_->failed = true;
      if (senders_->running.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      failed = senders_->failed;
    }
    if (!failed) {
      ch_.close();
      return;
    }
    goro::Chan<T>* ch = &ch_;
    group_.go([ch, ctx = group_.context()] {
      ctx.done().recv();
      ch->close();
    });
  }

 private:
  goro::ErrGroup& group_;
  goro::Chan<T>& ch_;
  Senders* senders_;
  int exceptions_ = std::uncaught_exceptions();
};

// A stage that fails stops reading its input, and the stages upstream would block sending to it:
// call this from its catch block before rethrowing. A new goroutine of the group takes the rest of
// the input (each item passed to `rest`) while the exception fails the group, which cancels the
// run.
template <class T, class Rest>
void drain_after_failure(goro::ErrGroup& group, goro::Chan<T>& in, Rest rest) {
  group.go([&in, rest = std::move(rest)]() mutable {
    for (T item : in) rest(item);
  });
}

void read_stage(goro::ErrGroup& group, const goro::Context& ctx, InputFormat format, ReadFn& read,
                goro::Chan<Batch>& out, const PipelineConfig& cfg) {
  CloseOnExit<Batch> closer(group, out);
  struct InputDone {  // however the stage ends; before the channel closes
    Progress* progress;
    ~InputDone() {
      if (progress) progress->input_done = true;
    }
  } input_done{cfg.progress};
  auto parser = make_parser(format);
  std::string chunk(cfg.read_chunk, '\0');
  Batch batch;
  std::uint64_t seq = 0;
  auto ship = [&](bool all) {
    // Hand on full batches (and, at the end, the rest).
    std::size_t from = 0;
    const std::size_t size = batch.rows.size();
    while (size - from >= cfg.parse_batch || (all && from < size)) {
      std::size_t n = std::min(cfg.parse_batch, size - from);
      auto first = batch.rows.begin() + static_cast<std::ptrdiff_t>(from);
      Batch next{seq++, std::vector<RosterRow>(std::make_move_iterator(first),
                                               std::make_move_iterator(first + n))};
      from += n;
      if (cfg.progress) cfg.progress->parsed += n;
      out.send(std::move(next));
    }
    batch.rows.erase(batch.rows.begin(), batch.rows.begin() + static_cast<std::ptrdiff_t>(from));
  };
  while (!ctx.cancelled()) {
    std::size_t n = goro::blocking([&] { return read(chunk.data(), chunk.size()); });
    if (ctx.cancelled()) break;
    if (cfg.progress) cfg.progress->bytes_read += n;
    if (n == 0) {
      parser->finish(batch.rows);
      ship(true);
      break;
    }
    parser->feed(std::string_view(chunk.data(), n), batch.rows);
    ship(false);
  }
}

// One of the validator goroutines over the same channels; the last one to end closes `out`.
void validate_stage(goro::ErrGroup& group, goro::Chan<Batch>& in, goro::Chan<Batch>& out,
                    Senders& validators) {
  CloseOnExit<Batch> closer(group, out, &validators);
  for (Batch batch : in) {
    for (RosterRow& row : batch.rows) validate_row(row);
    out.send(std::move(batch));
  }
}

// The student ids seen so far, with the position of their first valid row: an open-addressing
// table over one byte arena, so that a million ids cost two allocations, not a million, and
// dropping the set is free. (std::unordered_map<std::string, ...> was a quarter of the
// pipeline's CPU time on 1M rows: a node and a string per id, and their teardown.)
class IdSet {
 public:
  IdSet() : slots_(1 << 16, 0) {}
  // Inserts `id` with `position` unless present. Returns {position of the first occurrence,
  // whether this call inserted it}.
  static std::uint64_t hash(std::string_view id) { return std::hash<std::string_view>{}(id); }
  // Hints that `insert(id with this hash)` is coming: the slot is a cache miss otherwise.
  void prefetch(std::uint64_t h) const { __builtin_prefetch(&slots_[h & (slots_.size() - 1)]); }
  std::pair<std::uint64_t, bool> insert(std::string_view id, std::uint64_t h,
                                        std::uint64_t position) {
    if ((entries_.size() + 1) * 2 > slots_.size()) grow();
    const std::uint64_t tag = h >> 32;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint64_t slot = slots_[i];
      if (slot == 0) {
        entries_.push_back(Entry{arena_.size(), static_cast<std::uint32_t>(id.size()), position});
        arena_.append(id);
        slots_[i] = (tag << 32) | entries_.size();  // entry index + 1: never 0
        return {position, true};
      }
      if ((slot >> 32) == tag) {
        const Entry& e = entries_[(slot & 0xFFFFFFFF) - 1];
        if (e.len == id.size() && arena_.compare(e.offset, e.len, id) == 0)
          return {e.position, false};
      }
    }
  }

 private:
  struct Entry {
    std::size_t offset;
    std::uint32_t len;
    std::uint64_t position;
  };
  void grow() {
    std::vector<std::uint64_t> slots(slots_.size() * 2, 0);
    const std::size_t mask = slots.size() - 1;
    for (std::size_t n = 0; n < entries_.size(); ++n) {
      const Entry& e = entries_[n];
      const std::uint64_t h =
          std::hash<std::string_view>{}(std::string_view(arena_).substr(e.offset, e.len));
      std::size_t i = h & mask;
      while (slots[i] != 0) i = (i + 1) & mask;
      slots[i] = ((h >> 32) << 32) | (n + 1);
    }
    slots_.swap(slots);
  }
  std::vector<std::uint64_t> slots_;  // (hash >> 32) << 32 | entry index + 1; 0 = empty
  std::vector<Entry> entries_;
  std::string arena_;
};

// One transaction's worth of rows, in input order, ready for the writer: `valid` points
// into `rows` at the rows to register (the others already have their result).
struct Txn {
  std::vector<RosterRow> rows;
  std::vector<RosterRow*> valid;
};

// Puts validated batches back in input order, fails in-roster duplicates and cuts the rows
// into transactions, so that the writer does nothing but SQLite: transaction N+1 is prepared
// here while the writer commits N.
void sequence_stage(goro::ErrGroup& group, goro::Chan<Batch>& in, goro::Chan<Txn>& out,
                    InputFormat format, const PipelineConfig& cfg) {
  CloseOnExit<Txn> closer(group, out);
  std::map<std::uint64_t, Batch> early;  // batches that overtook an earlier one
  std::uint64_t next_seq = 0;
  IdSet first_seen;  // student id → position of its first valid row
  std::vector<std::uint64_t> hashes;
  const std::string where = std::string(position_label(format)) + " ";
  Txn txn;
  std::size_t valid = 0;
  auto ship = [&] {
    for (RosterRow& row : txn.rows)
      if (row.outcome == Outcome::pending) txn.valid.push_back(&row);
    out.send(std::exchange(txn, {}));
    txn.rows.reserve(cfg.txn_rows + cfg.parse_batch);
    txn.valid.reserve(cfg.txn_rows);
    valid = 0;
  };
  txn.rows.reserve(cfg.txn_rows + cfg.parse_batch);
  for (Batch batch : in) {
    early.emplace(batch.seq, std::move(batch));
    for (auto it = early.find(next_seq); it != early.end(); it = early.find(++next_seq)) {
      std::vector<RosterRow> rows = std::move(it->second.rows);
      early.erase(it);
      // Hash the batch's ids first and fetch their slots a few rows ahead.
      constexpr std::size_t kAhead = 8;
      hashes.resize(rows.size());
      for (std::size_t i = 0; i < rows.size(); ++i) {
        hashes[i] = IdSet::hash(rows[i].student_id);
        if (i < kAhead) first_seen.prefetch(hashes[i]);
      }
      for (std::size_t i = 0; i < rows.size(); ++i) {
        RosterRow& row = rows[i];
        if (i + kAhead < rows.size()) first_seen.prefetch(hashes[i + kAhead]);
        if (row.outcome == Outcome::pending) {
          auto [first, fresh] = first_seen.insert(row.student_id, hashes[i], row.position);
          if (!fresh) {
            row.outcome = Outcome::duplicate_id;
            row.detail = "student_id also on " + where + std::to_string(first);
          }
        }
        txn.rows.push_back(std::move(row));
        if (txn.rows.back().outcome == Outcome::pending && ++valid >= cfg.txn_rows) ship();
      }
    }
  }
  if (!txn.rows.empty()) ship();
}

// The only goroutine that touches the database: one goro::blocking call per transaction, so
// the worker thread stays free for the other stages while SQLite writes. Once the run is
// cancelled (a failure elsewhere, or the caller's context: Ctrl-C) it commits no more; the
// transaction in flight finishes and its results are passed on.
void write_stage(const goro::Context& ctx, goro::ErrGroup& group, Store& store,
                 std::int64_t course_id, goro::Chan<Txn>& in,
                 goro::Chan<std::vector<RosterRow>>& out, const PipelineConfig& cfg) {
  CloseOnExit<std::vector<RosterRow>> closer(group, out);
  for (Txn txn : in) {
    if (ctx.cancelled()) continue;  // drain, so that upstream can finish
    try {
      if (!txn.valid.empty()) {
        goro::blocking([&] {
          if (cfg.dry_run) {
            store.preview_batch(course_id, txn.valid);
          } else {
            store.register_batch(course_id, txn.valid);
          }
        });
      }
    } catch (...) {
      drain_after_failure(group, in, [](Txn&) {});
      throw;
    }
    out.send(std::move(txn.rows));
  }
}

void output_stage(const goro::Context& ctx, goro::ErrGroup& group,
                  goro::Chan<std::vector<RosterRow>>& in, ResultSink& sink, Summary& summary,
                  const PipelineConfig& cfg) {
  auto count = [&summary, &cfg](const std::vector<RosterRow>& rows) {
    for (const RosterRow& row : rows) ++summary.by_outcome[static_cast<int>(row.outcome)];
    summary.rows += rows.size();
    if (cfg.progress) cfg.progress->done += rows.size();
  };
  for (std::vector<RosterRow> rows : in) {
    count(rows);
    try {
      sink.write(rows);
    } catch (...) {
      // The rest is counted, not written.
      drain_after_failure(group, in, count);
      throw;
    }
  }
  // A run that failed or was interrupted before its first result writes nothing at all (not
  // even a header), so that stdout is empty.
  if (summary.rows == 0 && ctx.cancelled()) return;
  sink.close();
}

}  // namespace

Summary register_roster(Store& store, std::int64_t course_id, InputFormat format, ReadFn read,
                        ResultSink& sink, const PipelineConfig& config) {
  const auto start = Clock::now();
  PipelineConfig cfg = config;
  if (cfg.validators <= 0) cfg.validators = 2 * std::max(1, goro::procs());
  if (cfg.parse_batch == 0) cfg.parse_batch = 1;
  if (cfg.txn_rows == 0) cfg.txn_rows = 1;
  if (cfg.read_chunk == 0) cfg.read_chunk = 1;

  // The first failure (an exception out of a stage) cancels group.context(): the reader stops and
  // the writer commits no more; wait() rethrows it once every stage has finished.
  goro::ErrGroup group(config.parent ? *config.parent : goro::Context::background());
  const goro::Context ctx = group.context();
  goro::Chan<Batch> parsed(cfg.queue_depth);
  goro::Chan<Batch> validated(cfg.queue_depth);
  goro::Chan<Txn> txns(1);  // one transaction prepared while the writer commits the previous
  goro::Chan<std::vector<RosterRow>> results(cfg.queue_depth);
  Summary summary;
  Senders validating(cfg.validators);

  group.go([&] { read_stage(group, ctx, format, read, parsed, cfg); });
  for (int i = 0; i < cfg.validators; ++i)
    group.go([&] { validate_stage(group, parsed, validated, validating); });
  group.go([&] {
    try {
      sequence_stage(group, validated, txns, format, cfg);
    } catch (...) {
      drain_after_failure(group, validated, [](Batch&) {});
      throw;
    }
  });
  group.go([&] { write_stage(ctx, group, store, course_id, txns, results, cfg); });
  group.go([&] { output_stage(ctx, group, results, sink, summary, cfg); });
  group.wait();
  summary.interrupted = config.parent && config.parent->cancelled();
  summary.dry_run = cfg.dry_run;
  summary.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return summary;
}

ReadFn string_reader(std::string text) {
  return [text = std::move(text), pos = std::size_t{0}](char* buf, std::size_t cap) mutable {
    std::size_t n = std::min(cap, text.size() - pos);
    std::memcpy(buf, text.data() + pos, n);
    pos += n;
    return n;
  };
}

FileSink::FileSink(std::FILE* file, OutputFormat format, std::string_view position_label)
    : file_(file), formatter_(format, position_label) {
  formatter_.begin(buf_);
}

void FileSink::write(std::span<const RosterRow> rows) {
  formatter_.rows(rows, buf_);
  if (buf_.size() >= (1 << 16)) flush();
}

void FileSink::close() {
  formatter_.end(buf_);
  flush();
  if (broken_) return;
  // errno belongs to the thread that ran the call: read it there.
  int err = goro::blocking([&] { return std::fflush(file_) == 0 ? 0 : errno; });
  if (err == EPIPE) {
    broken_ = true;
  } else if (err != 0) {
    throw std::runtime_error(std::string("cannot write results: ") + std::strerror(err));
  }
}

void FileSink::flush() {
  if (buf_.empty()) return;
  if (broken_) {
    buf_.clear();
    return;
  }
  int err = goro::blocking([&] {
    std::size_t n = std::fwrite(buf_.data(), 1, buf_.size(), file_);
    return n == buf_.size() ? 0 : errno;
  });
  buf_.clear();
  // The reader of the results went away (`registrar register ... | head`): the results stop,
  // the registration goes on (SIGPIPE is ignored by the CLI).
  if (err == EPIPE) {
    broken_ = true;
  } else if (err != 0) {
    throw std::runtime_error(std::string("cannot write results: ") + std::strerror(err));
  }
}

}  // namespace registrar
