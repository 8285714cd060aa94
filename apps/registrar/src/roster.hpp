// registrar roster: the row model and the streaming roster parsers.
//
// A roster is CSV with a header (student_id,name,email; any column order, extra columns
// ignored), a JSON array of objects, or NDJSON (one object per line). Each parser is fed the
// input in chunks of any size and appends every complete record to a vector, tagged with its
// position: the physical line where a CSV record starts, the line of an NDJSON record, or the
// index of a JSON array element. Damage confined to one record (a malformed NDJSON line, an
// array element that is not an object) becomes a `malformed` row; damage to the document as
// a whole (no CSV header, a truncated JSON array) throws RosterError.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace registrar {

enum class InputFormat { csv, json, ndjson };

// What happened to one roster row. `pending` = valid so far, not yet written.
enum class Outcome : std::uint8_t {
  pending,
  registered,
  already_registered,
  course_full,
  missing_id,
  missing_name,
  bad_email,
  too_long,
  duplicate_id,
  malformed,
};
inline constexpr int kOutcomeCount = static_cast<int>(Outcome::malformed) + 1;

std::string_view outcome_name(Outcome o);
// course_full and every validation failure; registered and already_registered are not.
bool is_failure(Outcome o);

struct RosterRow {
  std::uint64_t position = 0;  // CSV/NDJSON: 1-based line; JSON array: 0-based element index
  std::string student_id;
  std::string name;
  std::string email;
  Outcome outcome = Outcome::pending;
  std::string detail;  // why it failed, for humans
};

struct RosterError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class RosterParser {
 public:
  virtual ~RosterParser() = default;
  // Parses the next chunk (any size, any split), appending complete records to out.
  virtual void feed(std::string_view chunk, std::vector<RosterRow>& out) = 0;
  // End of input: appends the last record(s); throws RosterError if the document is broken.
  virtual void finish(std::vector<RosterRow>& out) = 0;
  // Bytes held back between feed() calls (an incomplete record): bounded by one record.
  virtual std::size_t buffered() const = 0;
};

std::unique_ptr<RosterParser> make_parser(InputFormat format);

// Parses a whole document at once (tests, small inputs).
std::vector<RosterRow> parse_roster(std::string_view text, InputFormat format);

// "csv" | "json" | "ndjson" (also "jsonl"); nullopt otherwise.
std::optional<InputFormat> input_format_from_name(std::string_view name);
std::string_view input_format_name(InputFormat f);
// .csv -> csv, .ndjson/.jsonl -> ndjson; nullopt for .json (array or NDJSON: sniff) and others.
std::optional<InputFormat> input_format_from_extension(std::string_view path);
// By the first non-space character: '[' -> json, '{' -> ndjson, anything else -> csv.
InputFormat sniff_input_format(std::string_view head);
// Whether `path` ends in .json (the format is then json or ndjson, never csv).
bool has_json_extension(std::string_view path);

// A field value fit to be echoed in a detail or on a terminal: control characters escaped
// (\n, \t, \xNN), cut at `max` bytes (on a UTF-8 boundary) with "…" appended.
std::string echo_value(std::string_view value, std::size_t max = 64);

// What `RosterRow::position` means for this format: "line" or "index".
std::string_view position_label(InputFormat f);

}  // namespace registrar
