// registrar output: formatting of results, registrations, courses and summaries.
#include "output.hpp"

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

void append_number(std::string& out, std::uint64_t n) { out += std::to_string(n); }

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

ResultFormatter::ResultFormatter(OutputFormat format, std::string_view position_label)
    : format_(format), label_(position_label) {}

void ResultFormatter::begin(std::string& out) {
  switch (format_) {
    case OutputFormat::table: {
      std::string upper;
      for (char c : label_) upper.push_back(static_cast<char>(c - 'a' + 'A'));
      append_padded(out, upper, 8);
      append_padded(out, "STUDENT_ID", 12);
      append_padded(out, "RESULT", 18);
      out += "DETAIL\n";
      break;
    }
    case OutputFormat::csv:
      out += label_ + ",student_id,result,detail\n";
      break;
    case OutputFormat::json:
      out += "[";
      break;
  }
}

void ResultFormatter::rows(std::span<const RosterRow> rows, std::string& out) {
  for (const RosterRow& r : rows) {
    switch (format_) {
      case OutputFormat::table:
        append_padded(out, std::to_string(r.position), 8);
        append_padded(out, one_line(r.student_id), 12);
        append_padded(out, outcome_name(r.outcome), 18);
        out += one_line(r.detail);
        while (!out.empty() && out.back() == ' ') out.pop_back();
        out.push_back('\n');
        break;
      case OutputFormat::csv:
        append_number(out, r.position);
        out.push_back(',');
        append_csv_field(out, r.student_id);
        out.push_back(',');
        out += outcome_name(r.outcome);
        out.push_back(',');
        append_csv_field(out, r.detail);
        out.push_back('\n');
        break;
      case OutputFormat::json:
        out += first_ ? "\n{\"" : ",\n{\"";
        first_ = false;
        out += label_;
        out += "\":";
        append_number(out, r.position);
        out += ",\"student_id\":";
        append_json_string(out, r.student_id);
        out += ",\"result\":\"";
        out += outcome_name(r.outcome);
        out += "\",\"detail\":";
        append_json_string(out, r.detail);
        out.push_back('}');
        break;
    }
  }
}

void ResultFormatter::end(std::string& out) {
  if (format_ == OutputFormat::json) out += first_ ? "]\n" : "\n]\n";
}

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

void RegistrationFormatter::begin(std::string& out) {
  switch (format_) {
    case OutputFormat::table:
      append_padded(out, "STUDENT_ID", 12);
      append_padded(out, "REGISTERED_AT", 24);
      append_padded(out, "NAME", 24);
      out += "EMAIL\n";
      break;
    case OutputFormat::csv:
      out += "student_id,name,email,registered_at\n";
      break;
    case OutputFormat::json:
      out += "[";
      break;
  }
}

void RegistrationFormatter::row(const Registration& r, std::string& out) {
  switch (format_) {
    case OutputFormat::table:
      append_padded(out, one_line(r.student_id), 12);
      append_padded(out, r.registered_at, 24);
      append_padded(out, one_line(r.name), 24);
      out += one_line(r.email) + "\n";
      break;
    case OutputFormat::csv:
      append_csv_field(out, r.student_id);
      out.push_back(',');
      append_csv_field(out, r.name);
      out.push_back(',');
      append_csv_field(out, r.email);
      out.push_back(',');
      append_csv_field(out, r.registered_at);
      out.push_back('\n');
      break;
    case OutputFormat::json:
      out += first_ ? "\n{\"student_id\":" : ",\n{\"student_id\":";
      append_json_string(out, r.student_id);
      out += ",\"name\":";
      append_json_string(out, r.name);
      out += ",\"email\":";
      append_json_string(out, r.email);
      out += ",\"registered_at\":";
      append_json_string(out, r.registered_at);
      out.push_back('}');
      break;
  }
  first_ = false;
}

void RegistrationFormatter::end(std::string& out) {
  if (format_ == OutputFormat::json) out += first_ ? "]\n" : "\n]\n";
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
  switch (format) {
    case OutputFormat::table:
      append_padded(out, "ID", 6);
      append_padded(out, "CAPACITY", 10);
      append_padded(out, "REGISTERED", 10);
      out += "NAME\n";
      for (const Course& c : courses) {
        append_padded(out, std::to_string(c.id), 6);
        append_padded(out, std::to_string(c.capacity), 10);
        append_padded(out, std::to_string(c.registered), 10);
        out += one_line(c.name) + "\n";
      }
      break;
    case OutputFormat::csv:
      out += "id,name,capacity,registered\n";
      for (const Course& c : courses) {
        out += std::to_string(c.id) + ",";
        append_csv_field(out, c.name);
        out += ',';
        out += std::to_string(c.capacity);
        out += ',';
        out += std::to_string(c.registered);
        out += '\n';
      }
      break;
    case OutputFormat::json:
      out += "[";
      for (std::size_t i = 0; i < courses.size(); ++i) {
        const Course& c = courses[i];
        out += i ? ",\n{\"id\":" : "\n{\"id\":";
        out += std::to_string(c.id) + ",\"name\":";
        append_json_string(out, c.name);
        out += ",\"capacity\":" + std::to_string(c.capacity) +
               ",\"registered\":" + std::to_string(c.registered) + "}";
      }
      out += courses.empty() ? "]\n" : "\n]\n";
      break;
  }
  return out;
}

}  // namespace registrar
