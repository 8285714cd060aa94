// registrar roster generator.
#include "generate.hpp"

#include <cctype>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "output.hpp"

namespace registrar {

namespace {

constexpr const char* kFirst[] = {"Ada",     "Alan",  "Barbara", "Brian",  "Dennis", "Edsger",
                                  "Frances", "Grace", "Guido",   "Ken",    "Linus",  "Margaret",
                                  "Niklaus", "Radia", "Rob",     "Robert", "Sophie", "Tony"};
constexpr const char* kLast[] = {"Lovelace",  "Turing",   "Liskov", "Kernighan",  "Ritchie",
                                 "Dijkstra",  "Allen",    "Hopper", "van Rossum", "Thompson",
                                 "Torvalds",  "Hamilton", "Wirth",  "Perlman",    "Pike",
                                 "Griesemer", "Wilson",   "Hoare"};

struct Student {
  std::string id, name, email;
};

Student make_student(std::uint64_t number, std::uint64_t r) {
  const char* first = kFirst[r % std::size(kFirst)];
  const char* last = kLast[(r / 31) % std::size(kLast)];
  char id[32];
  std::snprintf(id, sizeof id, "S%07llu", static_cast<unsigned long long>(number));
  Student s;
  s.id = id;
  switch ((r / 977) % 10) {
    case 0:
      s.name = std::string(last) + ", " + first;  // a comma: CSV must quote it
      break;
    case 1:
      s.name = std::string(first) + " \"" + first[0] + "\" " + last;  // embedded quotes
      break;
    default:
      s.name = std::string(first) + " " + last;
  }
  for (const char* p = first; *p; ++p) s.email.push_back(static_cast<char>(std::tolower(*p)));
  s.email += ".";
  for (const char* p = last; *p; ++p)
    if (*p != ' ') s.email.push_back(static_cast<char>(std::tolower(*p)));
  s.email += '.';
  s.email += std::to_string(number);
  s.email += "@example.edu";
  return s;
}

}  // namespace

GenStats generate_roster(const GenOptions& options,
                         const std::function<void(std::string_view)>& write) {
  std::mt19937_64 rng(options.seed);
  GenStats stats;
  std::vector<std::uint64_t> valid;  // student numbers emitted valid, for duplicates
  std::uint64_t next_number = 1;
  std::string buf;
  auto emit = [&](const Student& s) {
    switch (options.format) {
      case InputFormat::csv:
        append_csv_field(buf, s.id);
        buf.push_back(',');
        append_csv_field(buf, s.name);
        buf.push_back(',');
        append_csv_field(buf, s.email);
        buf.push_back('\n');
        break;
      case InputFormat::json:
      case InputFormat::ndjson:
        if (options.format == InputFormat::json) buf += stats.rows == 0 ? "\n" : ",\n";
        buf += "{\"student_id\":";
        append_json_string(buf, s.id);
        buf += ",\"name\":";
        append_json_string(buf, s.name);
        buf += ",\"email\":";
        append_json_string(buf, s.email);
        buf += options.format == InputFormat::json ? "}" : "}\n";
        break;
    }
    ++stats.rows;
    if (buf.size() >= (1 << 16)) {
      write(buf);
      buf.clear();
    }
  };

  buf = options.format == InputFormat::csv    ? "student_id,name,email\n"
        : options.format == InputFormat::json ? "["
                                              : "";
  for (std::uint64_t i = 0; i < options.count; ++i) {
    std::uint64_t r = rng();
    unsigned pick = static_cast<unsigned>(r % 1000);
    if (pick < options.duplicate_permille && !valid.empty()) {
      std::uint64_t number = valid[(r / 1000) % valid.size()];
      emit(make_student(number, rng()));  // same id, possibly other name: still a duplicate
      ++stats.duplicates;
    } else if (pick < options.duplicate_permille + options.invalid_permille) {
      Student s = make_student(next_number++, rng());
      switch ((r / 1000) % 3) {
        case 0:
          s.id.clear();
          break;
        case 1:
          s.name.clear();
          break;
        default:
          s.email.replace(s.email.find('@'), 1, " at ");
      }
      emit(s);
      ++stats.invalid;
    } else {
      valid.push_back(next_number);
      emit(make_student(next_number++, rng()));
      ++stats.valid_unique;
    }
  }
  if (options.format == InputFormat::json) buf += stats.rows == 0 ? "]\n" : "\n]\n";
  if (!buf.empty()) write(buf);
  return stats;
}

}  // namespace registrar
