// registrar output: formatting of results, registrations, courses and summaries.
#include "output.hpp"

#include <algorithm>
#include <cstdio>

namespace registrar {

namespace {

void append_padded(std::string& out, std::string_view s, std::size_t width) {
  out.append(s);
  if (s.size() < width) out.append(width - s.size(), ' ');
  out.push_back(' ');
}

// Table cells stay on one line and never drive the terminal: control characters escaped.
std::string one_line(std::string_view s) { return echo_value(s, std::string_view::npos); }

}  // namespace

std::optional<OutputFormat> output_format_from_name(std::string_view name) {
  if (name == "table") return OutputFormat::table;
  if (name == "csv") return OutputFormat::csv;
  if (name == "json") return OutputFormat::json;
  return std::nullopt;
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

void append_csv_field(std::string& out, std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(s);
    return;
  }
  out.push_back('"');
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

// ---- column tables: one line per column, for every format ----

namespace {

using I64 = std::int64_t;

std::vector<Column<RosterRow>> result_columns(std::string_view label) {
  return {
      {std::string(label), 8, 0, [](const RosterRow& r) -> Cell { return I64(r.position); }},
      {"student_id", 12, 1, [](const RosterRow& r) -> Cell { return r.student_id; }},
      {"result", 18, 2, [](const RosterRow& r) -> Cell { return outcome_name(r.outcome); }},
      {"detail", 0, 3, [](const RosterRow& r) -> Cell { return r.detail; }},
  };
}

std::vector<Column<Registration>> registration_columns() {
  return {
      {"student_id", 12, 0, [](const Registration& r) -> Cell { return r.student_id; }},
      {"name", 24, 2, [](const Registration& r) -> Cell { return r.name; }},
      {"email", 0, 3, [](const Registration& r) -> Cell { return r.email; }},
      {"registered_at", 24, 1, [](const Registration& r) -> Cell { return r.registered_at; }},
  };
}

std::vector<Column<Course>> course_columns() {
  return {
      {"id", 6, 0, [](const Course& c) -> Cell { return c.id; }},
      {"name", 0, 3, [](const Course& c) -> Cell { return c.name; }},
      {"capacity", 10, 1, [](const Course& c) -> Cell { return c.capacity; }},
      {"registered", 10, 2, [](const Course& c) -> Cell { return c.registered; }},
  };
}

}  // namespace

// ---- the formats ----

template <class Row>
TableFormatter<Row>::TableFormatter(OutputFormat format, std::vector<Column<Row>> columns,
                                    bool trim_table_rows)
    : format_(format), columns_(std::move(columns)), trim_(trim_table_rows) {
  for (std::size_t i = 0; i < columns_.size(); ++i) table_order_.push_back(i);
  std::stable_sort(table_order_.begin(), table_order_.end(), [&](std::size_t a, std::size_t b) {
    return columns_[a].table_slot < columns_[b].table_slot;
  });
}

template <class Row>
void TableFormatter<Row>::begin(std::string& out) {
  switch (format_) {
    case OutputFormat::table:
      for (std::size_t n = 0; n < table_order_.size(); ++n) {
        const Column<Row>& c = columns_[table_order_[n]];
        std::string upper = c.name;
        for (char& ch : upper)
          if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
        if (n + 1 < table_order_.size()) {
          append_padded(out, upper, c.width);
        } else {
          out += upper;
        }
      }
      out.push_back('\n');
      break;
    case OutputFormat::csv:
      for (std::size_t i = 0; i < columns_.size(); ++i) {
        if (i) out.push_back(',');
        out += columns_[i].name;
      }
      out.push_back('\n');
      break;
    case OutputFormat::json:
      out += "[";
      break;
  }
}

template <class Row>
void TableFormatter<Row>::row(const Row& r, std::string& out) {
  switch (format_) {
    case OutputFormat::table:
      for (std::size_t n = 0; n < table_order_.size(); ++n) {
        const Column<Row>& c = columns_[table_order_[n]];
        const Cell cell = c.value(r);
        const std::string text = std::holds_alternative<I64>(cell)
                                     ? std::to_string(std::get<I64>(cell))
                                     : one_line(std::get<std::string_view>(cell));
        if (n + 1 < table_order_.size()) {
          append_padded(out, text, c.width);
        } else {
          out += text;
        }
      }
      if (trim_)
        while (!out.empty() && out.back() == ' ') out.pop_back();
      out.push_back('\n');
      break;
    case OutputFormat::csv:
      for (std::size_t i = 0; i < columns_.size(); ++i) {
        if (i) out.push_back(',');
        const Cell cell = columns_[i].value(r);
        if (std::holds_alternative<I64>(cell)) {
          out += std::to_string(std::get<I64>(cell));
        } else {
          append_csv_field(out, std::get<std::string_view>(cell));
        }
      }
      out.push_back('\n');
      break;
    case OutputFormat::json:
      out += first_ ? "\n{" : ",\n{";
      for (std::size_t i = 0; i < columns_.size(); ++i) {
        out += i ? ",\"" : "\"";
        out += columns_[i].name;
        out += "\":";
        const Cell cell = columns_[i].value(r);
        if (std::holds_alternative<I64>(cell)) {
          out += std::to_string(std::get<I64>(cell));
        } else {
          append_json_string(out, std::get<std::string_view>(cell));
        }
      }
      out.push_back('}');
      break;
  }
  first_ = false;
}

template <class Row>
void TableFormatter<Row>::end(std::string& out) {
  if (format_ == OutputFormat::json) out += first_ ? "]\n" : "\n]\n";
}

template class TableFormatter<RosterRow>;
template class TableFormatter<Registration>;
template class TableFormatter<Course>;

ResultFormatter::ResultFormatter(OutputFormat format, std::string_view position_label)
    : table_(format, result_columns(position_label), /*trim_table_rows=*/true) {}

RegistrationFormatter::RegistrationFormatter(OutputFormat format)
    : table_(format, registration_columns()) {}

std::uint64_t Summary::failed() const {
  std::uint64_t n = 0;
  for (int i = 0; i < kOutcomeCount; ++i)
    if (is_failure(static_cast<Outcome>(i))) n += by_outcome[i];
  return n;
}

std::string format_summary(const Summary& s, const Course& course) {
  std::string out;
  char line[160];
  auto add = [&](const char* label, std::uint64_t n) {
    std::snprintf(line, sizeof line, "  %-22s %10llu\n", label, static_cast<unsigned long long>(n));
    out += line;
  };
  out += "summary for course '" + course.name + "' (capacity " + std::to_string(course.capacity) +
         ")" + (s.dry_run ? " -- dry run: nothing was written" : "") +
         (s.interrupted ? " -- interrupted" : "") + "\n";
  add("rows", s.rows);
  add("registered", s.count(Outcome::registered));
  add("already_registered", s.count(Outcome::already_registered));
  add("failed", s.failed());
  for (int i = 0; i < kOutcomeCount; ++i) {
    auto o = static_cast<Outcome>(i);
    if (is_failure(o) && s.by_outcome[i] != 0)
      add(("  " + std::string(outcome_name(o))).c_str(), s.by_outcome[i]);
  }
  std::snprintf(line, sizeof line, "  %-22s %10.3f s\n", "elapsed", s.seconds);
  out += line;
  double rate = s.seconds > 0 ? static_cast<double>(s.rows) / s.seconds : 0.0;
  std::snprintf(line, sizeof line, "  %-22s %10.0f students/s\n", "throughput", rate);
  out += line;
  return out;
}

std::string format_summary_json(const Summary& s, const Course& course) {
  std::string out = "{\"course\":";
  append_json_string(out, course.name);
  out += ",\"capacity\":" + std::to_string(course.capacity);
  out += ",\"rows\":" + std::to_string(s.rows);
  out += ",\"registered\":" + std::to_string(s.count(Outcome::registered));
  out += ",\"already_registered\":" + std::to_string(s.count(Outcome::already_registered));
  out += ",\"failed\":" + std::to_string(s.failed());
  out += ",\"by_result\":{";
  bool first = true;
  for (int i = 0; i < kOutcomeCount; ++i) {
    auto o = static_cast<Outcome>(i);
    if (!is_failure(o) || s.by_outcome[i] == 0) continue;
    out += first ? "\"" : ",\"";
    first = false;
    out += outcome_name(o);
    out += "\":" + std::to_string(s.by_outcome[i]);
  }
  char num[64];
  std::snprintf(num, sizeof num, "%.3f", s.seconds);
  out += "},\"elapsed_s\":";
  out += num;
  std::snprintf(num, sizeof num, "%.0f",
                s.seconds > 0 ? static_cast<double>(s.rows) / s.seconds : 0.0);
  out += ",\"students_per_s\":";
  out += num;
  out += s.dry_run ? ",\"dry_run\":true" : ",\"dry_run\":false";
  out += s.interrupted ? ",\"interrupted\":true}\n" : ",\"interrupted\":false}\n";
  return out;
}

std::string format_registrations(const std::vector<Registration>& regs, OutputFormat format) {
  std::string out;
  RegistrationFormatter f(format);
  f.begin(out);
  for (const Registration& r : regs) f.row(r, out);
  f.end(out);
  return out;
}

std::string format_courses(const std::vector<Course>& courses, OutputFormat format) {
  std::string out;
  TableFormatter<Course> table(format, course_columns());
  table.begin(out);
  for (const Course& c : courses) table.row(c, out);
  table.end(out);
  return out;
}

}  // namespace registrar
