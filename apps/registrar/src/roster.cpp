// registrar roster: CSV (libcsv), JSON array and NDJSON (nlohmann::json) parsers.
#include "roster.hpp"

#include <csv.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace registrar {

namespace {

using nlohmann::json;

constexpr std::string_view kOutcomeNames[kOutcomeCount] = {
    "pending",      "registered", "already_registered", "course_full", "missing_id",
    "missing_name", "bad_email",  "duplicate_id",       "malformed",
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

// ---- CSV ------------------------------------------------------------------------------

// libcsv's parser state for "between records" (ROW_NOT_BEGUN in libcsv.c). The struct is
// public in csv.h; libcsv has used 0 for this state since 1.0.
constexpr int kCsvRowNotBegun = 0;

class CsvParser final : public RosterParser {
 public:
  CsvParser() {
    if (csv_init(&parser_, CSV_APPEND_NULL) != 0) throw RosterError("out of memory (libcsv)");
  }
  ~CsvParser() override { csv_free(&parser_); }
  CsvParser(const CsvParser&) = delete;
  CsvParser& operator=(const CsvParser&) = delete;

  void feed(std::string_view chunk, std::vector<RosterRow>& out) override {
    out_ = &out;
    // Feed libcsv one physical line at a time so that we know on which line each record
    // starts: a record starts on the first line that begins while libcsv is between records
    // (a blank line leaves it there, so the next line takes over; a quoted field that spans
    // lines keeps it inside the record).
    while (!chunk.empty()) {
      if (at_line_start_ && parser_.pstate == kCsvRowNotBegun) record_start_ = line_;
      std::size_t nl = chunk.find('\n');
      std::size_t n = nl == std::string_view::npos ? chunk.size() : nl + 1;
      std::size_t done = csv_parse(&parser_, chunk.data(), n, on_field, on_record, this);
      if (done != n) throw RosterError(std::string("CSV: ") + csv_strerror(csv_error(&parser_)));
      check_error();
      at_line_start_ = nl != std::string_view::npos;
      if (at_line_start_) ++line_;
      chunk.remove_prefix(n);
    }
  }

  void finish(std::vector<RosterRow>& out) override {
    out_ = &out;
    if (csv_fini(&parser_, on_field, on_record, this) != 0)
      throw RosterError(std::string("CSV: ") + csv_strerror(csv_error(&parser_)));
    check_error();
    if (!have_header_)
      throw RosterError("CSV roster is empty: expected a header student_id,name,email");
  }

 private:
  static void on_field(void* s, std::size_t len, void* self) {
    auto* p = static_cast<CsvParser*>(self);
    p->fields_.emplace_back(s ? static_cast<const char*>(s) : "", s ? len : 0);
  }
  // Runs inside libcsv (C): never throws; errors are picked up by check_error().
  static void on_record(int /*terminator*/, void* self) {
    auto* p = static_cast<CsvParser*>(self);
    if (p->error_.empty()) {
      if (!p->have_header_) {
        p->read_header();
      } else {
        RosterRow row;
        row.position = p->record_start_;
        auto field = [&](int col) -> std::string {
          return col < static_cast<int>(p->fields_.size()) ? std::move(p->fields_[col])
                                                           : std::string();
        };
        row.student_id = field(p->col_id_);
        row.name = field(p->col_name_);
        row.email = field(p->col_email_);
        p->out_->push_back(std::move(row));
      }
    }
    p->fields_.clear();
  }

  void read_header() {
    have_header_ = true;
    std::string seen;
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      std::string_view f = fields_[i];
      if (i == 0 && f.substr(0, 3) == "\xEF\xBB\xBF") f.remove_prefix(3);  // UTF-8 BOM
      std::string name = lower(trim_view(f));
      int col = static_cast<int>(i);
      if (name == "student_id" && col_id_ < 0) col_id_ = col;
      if (name == "name" && col_name_ < 0) col_name_ = col;
      if (name == "email" && col_email_ < 0) col_email_ = col;
      if (!seen.empty()) seen += ',';
      seen += name;
    }
    if (col_id_ < 0 || col_name_ < 0 || col_email_ < 0)
      error_ = "CSV header (line " + std::to_string(record_start_) +
               ") must name the columns student_id, name and email; it has: " + seen;
  }

  void check_error() const {
    if (!error_.empty()) throw RosterError(error_);
  }

  csv_parser parser_{};
  std::vector<RosterRow>* out_ = nullptr;
  std::vector<std::string> fields_;
  std::uint64_t line_ = 1;  // the physical line being fed
  bool at_line_start_ = true;
  std::uint64_t record_start_ = 1;
  bool have_header_ = false;
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
  return std::string(what);
}

// A JSON array needs the whole document; it is buffered and parsed at finish().
class JsonArrayParser final : public RosterParser {
 public:
  void feed(std::string_view chunk, std::vector<RosterRow>&) override { text_.append(chunk); }
  void finish(std::vector<RosterRow>& out) override {
    json doc;
    try {
      doc = json::parse(text_);
    } catch (const json::exception& e) {
      throw RosterError("JSON roster: " + short_json_error(e));
    }
    text_.clear();
    if (!doc.is_array()) throw RosterError("JSON roster must be an array of objects");
    out.reserve(out.size() + doc.size());
    for (std::size_t i = 0; i < doc.size(); ++i) {
      RosterRow row;
      row.position = i;
      row_from_json(doc[i], row);
      out.push_back(std::move(row));
    }
  }

 private:
  std::string text_;
};

class NdjsonParser final : public RosterParser {
 public:
  void feed(std::string_view chunk, std::vector<RosterRow>& out) override {
    while (!chunk.empty()) {
      std::size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        partial_.append(chunk);
        return;
      }
      if (partial_.empty()) {
        parse_line(chunk.substr(0, nl), out);
      } else {
        partial_.append(chunk.substr(0, nl));
        parse_line(partial_, out);
        partial_.clear();
      }
      chunk.remove_prefix(nl + 1);
    }
  }
  void finish(std::vector<RosterRow>& out) override {
    if (!partial_.empty()) parse_line(partial_, out);
    partial_.clear();
  }

 private:
  void parse_line(std::string_view line, std::vector<RosterRow>& out) {
    std::uint64_t number = line_++;
    if (trim_view(line).empty()) return;
    RosterRow row;
    row.position = number;
    try {
      row_from_json(json::parse(line), row);
    } catch (const json::exception& e) {
      row.outcome = Outcome::malformed;
      row.detail = "invalid JSON: " + short_json_error(e);
    }
    out.push_back(std::move(row));
  }

  std::string partial_;
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

std::string_view position_label(InputFormat f) { return f == InputFormat::json ? "index" : "line"; }

}  // namespace registrar
