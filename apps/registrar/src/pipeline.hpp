// registrar pipeline: bulk registration as a goroutine pipeline.
//
//   reader ─▶ validators (N) ─▶ sequencer ─▶ writer ─▶ output
//   (parse)   (field rules)     (order,      (SQLite   (format,
//                                dedupe,      only)     summary)
//                                cut txns)
//
// The reader reads the input in chunks through goro::blocking and parses it into numbered
// batches. Validators take batches off one channel, so they finish out of order; the
// sequencer puts the batches back in input order, fails in-roster duplicates and cuts the
// rows into transactions of up to `txn_rows` registrations. The writer does nothing but
// SQLite: each BEGIN IMMEDIATE transaction is one goro::blocking call, and the sequencer
// prepares transaction N+1 while N commits (a channel of one between them). Rows leave the
// writer in input order once their transaction committed; the output goroutine formats them
// into the sink and counts the summary. The first failure (unreadable input, broken
// document, database error) cancels the run: stages stop producing, drain their inputs and
// exit, and the error is rethrown by register_roster() once every goroutine has finished.
// Cancelling the caller's context (PipelineConfig::parent: Ctrl-C in the CLI, a client gone
// in a service) interrupts the run the same way but is not an error.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <goro/goro.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "output.hpp"
#include "roster.hpp"
#include "store.hpp"

namespace registrar {

// Reads up to `cap` bytes into buf; returns 0 at end of input; throws on error. It may block:
// the pipeline calls it through goro::blocking.
using ReadFn = std::function<std::size_t(char* buf, std::size_t cap)>;

// Receives results in input order, from one goroutine. Implementations do their I/O with
// goro::blocking. close() follows the last write().
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  virtual void write(std::span<const RosterRow> rows) = 0;
  virtual void close() = 0;
};

// Formats results into a FILE* (stdout or --out) in large blocking writes.
class FileSink final : public ResultSink {
 public:
  FileSink(std::FILE* file, OutputFormat format, std::string_view position_label);
  void write(std::span<const RosterRow> rows) override;
  void close() override;
  // The reader closed the stream (EPIPE): later results were dropped.
  bool broken() const { return broken_; }

 private:
  void flush();
  std::FILE* file_;
  bool broken_ = false;
  ResultFormatter formatter_;
  std::string buf_;
};

// Keeps the results (tests).
class VectorSink final : public ResultSink {
 public:
  void write(std::span<const RosterRow> rows) override {
    rows_.insert(rows_.end(), rows.begin(), rows.end());
  }
  void close() override { closed_ = true; }
  const std::vector<RosterRow>& rows() const { return rows_; }
  bool closed() const { return closed_; }

 private:
  std::vector<RosterRow> rows_;
  bool closed_ = false;
};

// Live counters for a progress display (read from another goroutine).
struct Progress {
  std::atomic<std::uint64_t> parsed{0};  // rows parsed so far
  std::atomic<std::uint64_t> done{0};    // rows with a final result
  std::atomic<bool> input_done{false};   // `parsed` is final
  std::atomic<std::uint64_t> bytes_read{0};
  std::uint64_t input_size = 0;  // bytes, when known (a regular file); set before the run
};

struct PipelineConfig {
  int validators = 0;                // validator goroutines; 0: 2 × goro::procs()
  std::size_t parse_batch = 500;     // rows per batch between stages
  std::size_t txn_rows = 1000;       // registrations per transaction
  std::size_t read_chunk = 1 << 18;  // bytes per read
  std::size_t queue_depth = 8;       // batches buffered between stages
  Progress* progress = nullptr;
  bool dry_run = false;  // Store::preview_batch instead of register_batch: nothing is written
  // Cancelling it interrupts the run (Ctrl-C): no further transaction starts, the one in
  // flight completes and its results are written; register_roster() then returns normally
  // with Summary::interrupted set.
  std::optional<goro::Context> parent;
};

// Registers every row of the roster for the course. Must run on a goroutine (inside
// goro::run). Each input row produces exactly one result in the sink, in input order (an
// interrupted run: each row of the transactions that committed). A run that fails or is
// interrupted before its first result does not close the sink (a FileSink then writes
// nothing, not even its header).
// Throws RosterError, StoreError/DbLocked or the read function's exception; results for the
// transactions that committed before the failure have been written to the sink then.
Summary register_roster(Store& store, std::int64_t course_id, InputFormat format, ReadFn read,
                        ResultSink& sink, const PipelineConfig& config = {});

// A ReadFn over an in-memory string (tests, and the CLI's already-read first chunk).
ReadFn string_reader(std::string text);

}  // namespace registrar
