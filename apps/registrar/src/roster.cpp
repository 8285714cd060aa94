// registrar roster: CSV (a strict RFC 4180 reader of its own), JSON array (streamed) and NDJSON
// (nlohmann::json) parsers.
#include "roster.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace registrar {

namespace {

using nlohmann::json;

constexpr std::string_view kOutcomeNames[kOutcomeCount] = {
    "pending",      "registered", "already_registered", "course_full",  "missing_id",
    "missing_name", "bad_email",  "too_long",           "duplicate_id", "malformed",
};

std::string_view trim_view(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Bytes kept of one CSV field (including ignored columns); beyond, the row is malformed.
constexpr std::size_t kMaxCsvField = 64 * 1024;

// ---- CSV ------------------------------------------------------------------------------

// A strict RFC 4180 reader, fed in chunks of any size. Records end at CR, LF or CRLF outside
// quotes; a quoted field may span lines; `""` inside quotes is a quote. Anything else (a
// quote inside an unquoted field, text after a closing quote, an unterminated quote, a wrong
// number of fields, a NUL byte, invalid UTF-8, a field over kMaxCsvField bytes) makes the
// record `malformed` with its line, column or byte offset; after a quoting error the reader
// skips to the end of the physical line, so no later record is swallowed. Lines are counted
// for CR, LF and CRLF alike. Blank lines (and lines of spaces only) are skipped.
class CsvParser final : public RosterParser {
 public:
  void feed(std::string_view chunk, std::vector<RosterRow>& out) override {
    out_ = &out;
    if (!bom_checked_) {
      // A UTF-8 BOM is only meaningful as the first three bytes of the input.
      std::size_t take = std::min(chunk.size(), 3 - head_.size());
      head_.append(chunk.substr(0, take));
      chunk.remove_prefix(take);
      if (head_.size() < 3) return;  // wait for more input
      finish_head();
    }
    consume(chunk);
    check_error();
  }

  void finish(std::vector<RosterRow>& out) override {
    out_ = &out;
    if (!bom_checked_) finish_head();
    if (state_ == State::quoted || state_ == State::quote_in_quoted) {
      if (state_ == State::quote_in_quoted) {
        end_field();
        end_record();
      } else {
        set_error("unterminated quoted field (opened on line " + std::to_string(quote_line_) +
                  ", column " + std::to_string(quote_col_) + ")");
        emit_malformed();
      }
    } else if (state_ == State::skip) {
      emit_malformed();
    } else if (state_ != State::record_start) {
      end_field();
      end_record();
    }
    state_ = State::record_start;
    check_error();
    if (!have_header_)
      throw RosterError("CSV roster is empty: expected a header student_id,name,email");
  }

  std::size_t buffered() const override { return field_.size(); }

 private:
  enum class State : std::uint8_t {
    record_start,     // between records (also: after a CR, swallowing the LF of a CRLF)
    field_start,      // after a separator
    unquoted,         // inside an unquoted field
    quoted,           // inside a quoted field
    quote_in_quoted,  // just read a quote inside a quoted field: "" or the closing quote
    skip,             // after a quoting error: skip to the end of the physical line
  };

  // The input before the first three bytes are known; a BOM there is dropped.
  void finish_head() {
    bom_checked_ = true;
    std::string head = std::move(head_);
    std::string_view h = head;
    if (h.substr(0, 3) == "\xEF\xBB\xBF") {
      h.remove_prefix(3);
      offset_ = 3;
      col_ = 0;
    }
    consume(h);
  }

  void consume(std::string_view chunk) {
    std::size_t i = 0;
    while (i < chunk.size()) {
      // Fast path: a run of printable ASCII inside a field is copied at once.
      if ((state_ == State::unquoted || state_ == State::quoted) && utf8_need_ == 0 && !prev_cr_) {
        const bool quoted = state_ == State::quoted;
        std::size_t j = i;
        while (j < chunk.size()) {
          const auto c = static_cast<unsigned char>(chunk[j]);
          if (c < 0x20 || c >= 0x80 || c == '"' || (c == ',' && !quoted)) break;
          ++j;
        }
        if (j > i) {
          append(chunk.substr(i, j - i));
          offset_ += j - i;
          col_ += j - i;
          i = j;
          continue;
        }
      }
      step(chunk[i++]);
    }
  }

  // One input byte: position bookkeeping, byte checks, then the state machine.
  void step(char ch) {
    const auto c = static_cast<unsigned char>(ch);
    const std::uint64_t offset = offset_++;
    if (c == '\n' && prev_cr_) {
      prev_cr_ = false;
      // The LF of a CRLF: the line was already counted at the CR.
      if (state_ == State::quoted) field_.push_back('\n');
      return;
    }
    prev_cr_ = c == '\r';
    ++col_;
    const std::uint64_t line = line_, col = col_;
    if (c == '\r' || c == '\n') {
      ++line_;
      col_ = 0;
    }
    if (state_ == State::skip) {
      if (c == '\r' || c == '\n') {
        emit_malformed();
        state_ = State::record_start;
      }
      return;
    }
    check_bytes(c, offset, line, col);
    switch (state_) {
      case State::record_start:
        if (c == '\r' || c == '\n') return;  // blank line
        record_line_ = line;
        state_ = State::field_start;
        [[fallthrough]];
      case State::field_start:
        if (c == '"') {
          state_ = State::quoted;
          quoted_field_ = true;
          quote_line_ = line;
          quote_col_ = col;
        } else if (c == ',') {
          end_field();
        } else if (c == '\r' || c == '\n') {
          end_field();
          end_record();
        } else {
          state_ = State::unquoted;
          append(ch);
        }
        return;
      case State::unquoted:
        if (c == ',') {
          end_field();
          state_ = State::field_start;
        } else if (c == '\r' || c == '\n') {
          end_field();
          end_record();
        } else if (c == '"') {
          quote_error(line, col, "bare \" in non-quoted field");
        } else {
          append(ch);
        }
        return;
      case State::quoted:
        if (c == '"') {
          state_ = State::quote_in_quoted;
        } else {
          append(ch);
        }
        return;
      case State::quote_in_quoted:
        if (c == '"') {
          append('"');
          state_ = State::quoted;
        } else if (c == ',') {
          end_field();
          state_ = State::field_start;
        } else if (c == '\r' || c == '\n') {
          end_field();
          end_record();
        } else {
          // Reported at the quote before, as Go's encoding/csv does.
          quote_error(line, col - 1, "extraneous or missing \" in quoted field");
        }
        return;
      case State::skip:
        return;
    }
  }

  // NUL and UTF-8 checks on the raw bytes (the CSV syntax is ASCII, so a valid stream means
  // valid fields). The first problem of a record is kept.
  void check_bytes(unsigned char c, std::uint64_t offset, std::uint64_t line, std::uint64_t col) {
    auto bad = [&](const char* what) {
      if (problem_.empty())
        problem_ = std::string(what) + " at byte offset " + std::to_string(offset) + " (line " +
                   std::to_string(line) + ", column " + std::to_string(col) + ")";
    };
    if (utf8_need_ == 0) {
      if (c < 0x80) {
        if (c == 0) bad("NUL byte");
        return;
      }
      if (c >= 0xC2 && c <= 0xDF) {
        utf8_need_ = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        utf8_need_ = 2;
        utf8_lo_ = c == 0xE0 ? 0xA0 : 0x80;
        utf8_hi_ = c == 0xED ? 0x9F : 0xBF;
        return;
      } else if (c >= 0xF0 && c <= 0xF4) {
        utf8_need_ = 3;
        utf8_lo_ = c == 0xF0 ? 0x90 : 0x80;
        utf8_hi_ = c == 0xF4 ? 0x8F : 0xBF;
        return;
      } else {
        bad("invalid UTF-8");
        return;
      }
      utf8_lo_ = 0x80;
      utf8_hi_ = 0xBF;
      return;
    }
    if (c < utf8_lo_ || c > utf8_hi_) {
      utf8_need_ = 0;
      bad("invalid UTF-8");
      check_bytes(c, offset, line, col);  // the byte may start something valid
      return;
    }
    --utf8_need_;
    utf8_lo_ = 0x80;
    utf8_hi_ = 0xBF;
  }

  void append(char c) { append(std::string_view(&c, 1)); }
  void append(std::string_view text) {
    if (field_.size() + text.size() <= kMaxCsvField) {
      field_.append(text);
    } else if (problem_.empty()) {
      problem_ = "field " + std::to_string(fields_.size() + 1) + " is longer than " +
                 std::to_string(kMaxCsvField) + " bytes";
    }
  }

  void quote_error(std::uint64_t line, std::uint64_t col, const char* what) {
    if (!have_header_) {
      error_ = "CSV header: parse error on line " + std::to_string(line) + ", column " +
               std::to_string(col) + ": " + what;
      state_ = State::skip;
      return;
    }
    problem_ = "parse error on line " + std::to_string(line) + ", column " + std::to_string(col) +
               ": " + what;
    end_field();
    state_ = State::skip;
  }

  void end_field() {
    fields_.push_back(std::move(field_));
    field_.clear();
  }

  void reset_record() {
    fields_.clear();
    field_.clear();
    problem_.clear();
    quoted_field_ = false;
    state_ = State::record_start;
  }

  void set_error(std::string what) {
    if (!have_header_) {
      error_ = "CSV header: " + what;
    } else {
      problem_ = std::move(what);
    }
  }

  void emit_malformed() {
    if (have_header_ && error_.empty()) {
      RosterRow row;
      row.position = record_line_;
      row.outcome = Outcome::malformed;
      row.detail = std::move(problem_);
      if (col_id_ >= 0 && col_id_ < static_cast<int>(fields_.size()))
        row.student_id = echo_value(fields_[col_id_]);
      out_->push_back(std::move(row));
    }
    reset_record();
  }

  void end_record() {
    // A line of spaces only is blank, not a one-field record.
    if (fields_.size() == 1 && !quoted_field_ &&
        fields_[0].find_first_not_of(" \t") == std::string::npos && problem_.empty()) {
      reset_record();
      return;
    }
    if (!error_.empty()) {
      reset_record();
      return;
    }
    if (!have_header_) {
      if (!problem_.empty()) {
        error_ = "CSV header (line " + std::to_string(record_line_) + "): " + problem_;
      } else {
        read_header();
      }
      reset_record();
      return;
    }
    RosterRow row;
    row.position = record_line_;
    auto field = [&](int col) -> std::string {
      return col < static_cast<int>(fields_.size()) ? std::move(fields_[col]) : std::string();
    };
    if (problem_.empty() && fields_.size() != header_fields_)
      problem_ = std::to_string(fields_.size()) + (fields_.size() == 1 ? " field" : " fields") +
                 ", header has " + std::to_string(header_fields_);
    if (!problem_.empty()) {
      row.outcome = Outcome::malformed;
      row.detail = std::move(problem_);
      row.student_id = echo_value(field(col_id_));
    } else {
      row.student_id = field(col_id_);
      row.name = field(col_name_);
      row.email = field(col_email_);
    }
    out_->push_back(std::move(row));
    reset_record();
  }

  void read_header() {
    have_header_ = true;
    header_fields_ = fields_.size();
    std::string seen;
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      std::string name = lower(trim_view(fields_[i]));
      int col = static_cast<int>(i);
      if (name == "student_id" && col_id_ < 0) col_id_ = col;
      if (name == "name" && col_name_ < 0) col_name_ = col;
      if (name == "email" && col_email_ < 0) col_email_ = col;
      if (!seen.empty()) seen += ',';
      seen += name;
    }
    if (col_id_ < 0 || col_name_ < 0 || col_email_ < 0)
      error_ = "CSV header (line " + std::to_string(record_line_) +
               ") must name the columns student_id, name and email; it has: " + seen;
  }

  void check_error() const {
    if (!error_.empty()) throw RosterError(error_);
  }

  std::vector<RosterRow>* out_ = nullptr;
  State state_ = State::record_start;
  std::vector<std::string> fields_;
  std::string field_;
  std::string problem_;  // why the current record is malformed ("" = it is not)
  bool quoted_field_ = false;
  bool bom_checked_ = false;
  std::string head_;
  bool prev_cr_ = false;
  std::uint64_t offset_ = 0;  // byte offset of the next input byte
  std::uint64_t line_ = 1;    // physical line of the next byte
  std::uint64_t col_ = 0;     // column (bytes, 1-based) of the last byte on its line
  std::uint64_t record_line_ = 1;
  std::uint64_t quote_line_ = 0, quote_col_ = 0;
  int utf8_need_ = 0;
  unsigned char utf8_lo_ = 0x80, utf8_hi_ = 0xBF;
  bool have_header_ = false;
  std::size_t header_fields_ = 0;
  int col_id_ = -1, col_name_ = -1, col_email_ = -1;
  std::string error_;
};

// ---- JSON -----------------------------------------------------------------------------

// Field of a roster object as text: strings as-is, numbers in JSON notation, null/absent
// as empty. False for other types (the row is then malformed).
bool json_field(const json& obj, const char* key, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_string()) {
    out = it->get<std::string>();
    return true;
  }
  if (it->is_number()) {
    out = it->dump();
    return true;
  }
  return false;
}

void row_from_json(const json& j, RosterRow& row) {
  if (!j.is_object()) {
    row.outcome = Outcome::malformed;
    row.detail = std::string("expected an object, got ") + j.type_name();
    return;
  }
  for (auto [key, field] : {std::pair{"student_id", &row.student_id}, std::pair{"name", &row.name},
                            std::pair{"email", &row.email}}) {
    if (!json_field(j, key, *field)) {
      row.outcome = Outcome::malformed;
      row.detail = std::string(key) + " must be a string, got " + j.at(key).type_name();
      return;
    }
  }
}

std::string short_json_error(const json::exception& e) {
  std::string_view what = e.what();
  if (auto close = what.find("] "); !what.empty() && what.front() == '[' && close != what.npos)
    what.remove_prefix(close + 2);
  return echo_value(what, 200);  // "last read: '...'" may quote a whole field
}

// A JSON array, streamed: a scanner follows the array's structure (strings, escapes, nesting)
// and cuts out one element at a time, which nlohmann parses on its own. Memory is bounded by
// the largest element (capped at kMaxJsonElement), not by the document. An element that is
// not valid JSON is a `malformed` row; a document that is not an array, or is not closed,
// throws RosterError (the elements before the damage have been delivered).
constexpr std::size_t kMaxJsonElement = 1 << 20;

class JsonArrayParser final : public RosterParser {
 public:
  void feed(std::string_view chunk, std::vector<RosterRow>& out) override {
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      const char c = chunk[i];
      ++offset_;
      switch (state_) {
        case State::before:
          if (offset_ <= 3 && static_cast<unsigned char>(c) == "\xEF\xBB\xBF"[offset_ - 1])
            continue;  // UTF-8 BOM
          if (is_space(c)) continue;
          if (c != '[')
            throw RosterError("JSON roster must be an array of objects (found '" +
                              std::string(1, c) + "' at byte " + std::to_string(offset_ - 1) + ")");
          state_ = State::first;
          continue;
        case State::first:
        case State::next:
          if (is_space(c)) continue;
          if (c == ']') {
            if (state_ == State::next) emit_empty(out);
            state_ = State::after;
            continue;
          }
          if (c == ',') {
            emit_empty(out);
            state_ = State::next;
            continue;
          }
          state_ = State::element;
          depth_ = 0;
          in_string_ = escape_ = false;
          [[fallthrough]];
        case State::element: {
          // Copy the run of ordinary characters at once.
          std::size_t j = i;
          while (j < chunk.size()) {
            char d = chunk[j];
            if (in_string_) {
              if (escape_) {
                escape_ = false;
              } else if (d == '\\') {
                escape_ = true;
              } else if (d == '"') {
                in_string_ = false;
              }
            } else if (d == '"') {
              in_string_ = true;
            } else if (d == '{' || d == '[') {
              ++depth_;
            } else if ((d == '}' || d == ']') && depth_ > 0) {
              --depth_;
            } else if (depth_ == 0 && (d == ',' || d == ']')) {
              break;
            }
            ++j;
          }
          append(chunk.substr(i, j - i));
          offset_ += j - i;
          --offset_;  // the loop's ++offset_ counted chunk[i]
          if (j == chunk.size()) return;
          ++offset_;  // the delimiter
          emit(out);
          state_ = chunk[j] == ']' ? State::after : State::next;
          i = j;
          continue;
        }
        case State::after:
          if (!is_space(c))
            throw RosterError("JSON roster: unexpected '" + std::string(1, c) + "' at byte " +
                              std::to_string(offset_ - 1) + " after the end of the array");
          continue;
      }
    }
  }

  void finish(std::vector<RosterRow>&) override {
    if (state_ == State::before) throw RosterError("JSON roster is empty: expected an array");
    if (state_ != State::after)
      throw RosterError("JSON roster: unexpected end of input after " + std::to_string(index_) +
                        " elements (the array is not closed)");
  }

  std::size_t buffered() const override { return element_.size(); }

 private:
  enum class State : std::uint8_t { before, first, next, element, after };

  static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

  void append(std::string_view text) {
    if (element_.size() + text.size() <= kMaxJsonElement) {
      element_.append(text);
    } else {
      too_long_ = true;
    }
  }

  void emit(std::vector<RosterRow>& out) {
    RosterRow row;
    row.position = index_++;
    if (too_long_) {
      row.outcome = Outcome::malformed;
      row.detail = "element is longer than " + std::to_string(kMaxJsonElement) + " bytes";
    } else {
      try {
        row_from_json(json::parse(element_), row);
      } catch (const json::exception& e) {
        row.outcome = Outcome::malformed;
        row.detail = "invalid JSON: " + short_json_error(e);
      }
    }
    out.push_back(std::move(row));
    element_.clear();
    too_long_ = false;
  }

  // `[,` or `,,` or `,]`: a missing element.
  void emit_empty(std::vector<RosterRow>& out) {
    RosterRow row;
    row.position = index_++;
    row.outcome = Outcome::malformed;
    row.detail = "invalid JSON: expected a value before byte " + std::to_string(offset_ - 1);
    out.push_back(std::move(row));
  }

  State state_ = State::before;
  std::string element_;
  bool too_long_ = false;
  int depth_ = 0;
  bool in_string_ = false, escape_ = false;
  std::uint64_t index_ = 0;
  std::uint64_t offset_ = 0;  // bytes consumed
};

class NdjsonParser final : public RosterParser {
 public:
  void feed(std::string_view chunk, std::vector<RosterRow>& out) override {
    while (!chunk.empty()) {
      std::size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        keep(chunk);
        return;
      }
      if (partial_.empty() && !too_long_) {
        parse_line(chunk.substr(0, nl), out);
      } else {
        keep(chunk.substr(0, nl));
        parse_line(partial_, out);
        partial_.clear();
      }
      chunk.remove_prefix(nl + 1);
    }
  }
  void finish(std::vector<RosterRow>& out) override {
    if (!partial_.empty() || too_long_) parse_line(partial_, out);
    partial_.clear();
  }
  std::size_t buffered() const override { return partial_.size(); }

 private:
  // Holds back an incomplete line, up to kMaxJsonElement bytes.
  void keep(std::string_view text) {
    if (partial_.size() + text.size() <= kMaxJsonElement) {
      partial_.append(text);
    } else {
      too_long_ = true;
    }
  }

  void parse_line(std::string_view line, std::vector<RosterRow>& out) {
    std::uint64_t number = line_++;
    bool too_long = std::exchange(too_long_, false);
    if (!too_long && trim_view(line).empty()) return;
    RosterRow row;
    row.position = number;
    if (too_long) {
      row.outcome = Outcome::malformed;
      row.detail = "line is longer than " + std::to_string(kMaxJsonElement) + " bytes";
      out.push_back(std::move(row));
      return;
    }
    try {
      row_from_json(json::parse(line), row);
    } catch (const json::exception& e) {
      row.outcome = Outcome::malformed;
      row.detail = "invalid JSON: " + short_json_error(e);
    }
    out.push_back(std::move(row));
  }

  std::string partial_;
  bool too_long_ = false;
  std::uint64_t line_ = 1;
};

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && lower(s.substr(s.size() - suffix.size())) == suffix;
}

}  // namespace

std::string_view outcome_name(Outcome o) { return kOutcomeNames[static_cast<int>(o)]; }

bool is_failure(Outcome o) {
  return o != Outcome::pending && o != Outcome::registered && o != Outcome::already_registered;
}

std::unique_ptr<RosterParser> make_parser(InputFormat format) {
  switch (format) {
    case InputFormat::csv:
      return std::make_unique<CsvParser>();
    case InputFormat::json:
      return std::make_unique<JsonArrayParser>();
    case InputFormat::ndjson:
      return std::make_unique<NdjsonParser>();
  }
  throw std::invalid_argument("bad input format");
}

std::vector<RosterRow> parse_roster(std::string_view text, InputFormat format) {
  std::vector<RosterRow> rows;
  auto parser = make_parser(format);
  parser->feed(text, rows);
  parser->finish(rows);
  return rows;
}

std::optional<InputFormat> input_format_from_name(std::string_view name) {
  if (name == "csv") return InputFormat::csv;
  if (name == "json") return InputFormat::json;
  if (name == "ndjson" || name == "jsonl") return InputFormat::ndjson;
  return std::nullopt;
}

std::string_view input_format_name(InputFormat f) {
  switch (f) {
    case InputFormat::csv:
      return "csv";
    case InputFormat::json:
      return "json";
    case InputFormat::ndjson:
      return "ndjson";
  }
  return "?";
}

std::optional<InputFormat> input_format_from_extension(std::string_view path) {
  if (ends_with_ci(path, ".csv")) return InputFormat::csv;
  if (ends_with_ci(path, ".ndjson") || ends_with_ci(path, ".jsonl")) return InputFormat::ndjson;
  return std::nullopt;
}

bool has_json_extension(std::string_view path) { return ends_with_ci(path, ".json"); }

InputFormat sniff_input_format(std::string_view head) {
  head = trim_view(head);
  if (head.substr(0, 3) == "\xEF\xBB\xBF") head = trim_view(head.substr(3));
  if (head.empty()) return InputFormat::csv;
  if (head.front() == '[') return InputFormat::json;
  if (head.front() == '{') return InputFormat::ndjson;
  return InputFormat::csv;
}

std::string echo_value(std::string_view value, std::size_t max) {
  std::string out;
  std::size_t shown = 0;
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (shown >= max && (c & 0xC0) != 0x80) {  // cut before a character, never inside one
      out += "\xE2\x80\xA6";                   // …
      break;
    }
    ++shown;
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::string_view position_label(InputFormat f) { return f == InputFormat::json ? "index" : "line"; }

}  // namespace registrar
