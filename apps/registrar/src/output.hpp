// registrar output: result rows as a table, CSV or JSON; registrations, courses, summaries.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "roster.hpp"
#include "store.hpp"

namespace registrar {

enum class OutputFormat { table, csv, json };
std::optional<OutputFormat> output_format_from_name(std::string_view name);

// A cell of an output row: a number (bare in CSV and JSON) or text (CSV-quoted, JSON-escaped,
// control characters escaped in the table). Text points into the row.
using Cell = std::variant<std::int64_t, std::string_view>;

// One column of an output table: the single description that every format (table, CSV, JSON)
// uses, so that adding a column is one line in its table (output.cpp).
template <class Row>
struct Column {
  std::string name;   // CSV header and JSON key; upper-cased as the table header
  std::size_t width;  // table: padded to this width (not the table's last column)
  int table_slot;     // table: columns are laid out by increasing slot (CSV, JSON: as listed)
  Cell (*value)(const Row&);
};

// Streams rows in one format: begin(), row() any number of times, end(); each appends text.
//   table:  fixed-width columns under an upper-case header, one row per line
//   csv:    a header line, then RFC 4180 rows
//   json:   an array of objects, one per line
// Instantiated for RosterRow, Registration and Course (output.cpp).
template <class Row>
class TableFormatter {
 public:
  // trim_table_rows: the table drops trailing spaces from its rows (an empty last cell).
  TableFormatter(OutputFormat format, std::vector<Column<Row>> columns,
                 bool trim_table_rows = false);
  void begin(std::string& out);
  void row(const Row& r, std::string& out);
  void end(std::string& out);

 private:
  OutputFormat format_;
  std::vector<Column<Row>> columns_;
  std::vector<std::size_t> table_order_;  // indices into columns_
  bool trim_;
  bool first_ = true;
};
extern template class TableFormatter<RosterRow>;
extern template class TableFormatter<Registration>;
extern template class TableFormatter<Course>;

// Streams per-student results: begin(), rows() any number of times, end(); each appends text.
//   table:  LINE  STUDENT_ID  RESULT  DETAIL           (fixed-width columns)
//   csv:    line,student_id,result,detail              (RFC 4180 quoting)
//   json:   [{"line":2,"student_id":"S1","result":"registered","detail":""}, ...]
// The position column is called `position_label` ("line", or "index" for JSON arrays).
class ResultFormatter {
 public:
  ResultFormatter(OutputFormat format, std::string_view position_label);
  void begin(std::string& out) { table_.begin(out); }
  void rows(std::span<const RosterRow> rows, std::string& out) {
    for (const RosterRow& r : rows) table_.row(r, out);
  }
  void end(std::string& out) { table_.end(out); }

 private:
  TableFormatter<RosterRow> table_;
};

struct Summary {
  std::uint64_t rows = 0;
  std::uint64_t by_outcome[kOutcomeCount] = {};
  double seconds = 0;
  bool interrupted = false;  // cancelled by the caller (a signal) before the end of the input
  bool dry_run = false;      // nothing was written to the database
  std::uint64_t count(Outcome o) const { return by_outcome[static_cast<int>(o)]; }
  std::uint64_t failed() const;
};

// Human-readable, one figure per line; failures broken down by reason.
std::string format_summary(const Summary& s, const Course& course);

// Human-readable, one figure per line; failures broken down by reason.
// As one JSON object (--summary-format json):
//   {"course":"C","capacity":9,"rows":4,"registered":2,"already_registered":0,"failed":2,
//    "by_result":{"bad_email":1,"duplicate_id":1},"elapsed_s":0.01,"students_per_s":400,
//    "dry_run":false,"interrupted":false}
std::string format_summary_json(const Summary& s, const Course& course);

// Streams registrations (`list`): begin(), row() any number of times, end().
class RegistrationFormatter {
 public:
  explicit RegistrationFormatter(OutputFormat format);
  void begin(std::string& out) { table_.begin(out); }
  void row(const Registration& r, std::string& out) { table_.row(r, out); }
  void end(std::string& out) { table_.end(out); }

 private:
  TableFormatter<Registration> table_;
};

std::string format_registrations(const std::vector<Registration>& regs, OutputFormat format);
std::string format_courses(const std::vector<Course>& courses, OutputFormat format);

void append_json_string(std::string& out, std::string_view s);
void append_csv_field(std::string& out, std::string_view s);

}  // namespace registrar
