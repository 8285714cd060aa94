// registrar validation: field rules for one roster row.
#include "validate.hpp"

#include <cctype>
#include <cstring>
#include <utility>

namespace registrar {

namespace {

void trim(std::string& s) {
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  std::size_t b = 0, e = s.size();
  while (b < e && space(s[b])) ++b;
  while (e > b && space(s[e - 1])) --e;
  if (b != 0 || e != s.size()) s = s.substr(b, e - b);
}

bool fail(std::string* why, const char* text) {
  if (why) *why = text;
  return false;
}

// ASCII only, no locale: a table lookup per character.
struct CharClasses {
  bool atext[256] = {};
  bool alnum[256] = {};
  bool alpha[256] = {};
  constexpr CharClasses() {
    for (int c = 0; c < 256; ++c) {
      alpha[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      alnum[c] = alpha[c] || (c >= '0' && c <= '9');
      atext[c] = alnum[c];
    }
    for (const char* p = "!#$%&'*+/=?^_`{|}~-"; *p; ++p)
      atext[static_cast<unsigned char>(*p)] = true;
  }
};
constexpr CharClasses kChars;

bool is_atext(unsigned char c) { return kChars.atext[c]; }

}  // namespace

bool is_valid_email(std::string_view email, std::string* why) {
  if (email.empty()) return fail(why, "email is empty");
  if (email.size() > 254) return fail(why, "email is longer than 254 characters");
  std::size_t at = email.rfind('@');
  if (at == std::string_view::npos) return fail(why, "email has no '@'");
  std::string_view local = email.substr(0, at), domain = email.substr(at + 1);
  if (local.empty()) return fail(why, "email has nothing before '@'");
  if (local.size() > 64) return fail(why, "email local part is longer than 64 characters");
  if (domain.empty()) return fail(why, "email has no domain after '@'");
  if (local.front() == '.' || local.back() == '.' || local.find("..") != local.npos)
    return fail(why, "email local part has a misplaced '.'");
  for (unsigned char c : local)
    if (c != '.' && !is_atext(c)) {
      if (c == '@') return fail(why, "email has more than one '@'");
      if (std::isspace(c)) return fail(why, "email contains a space");
      return fail(why, "email local part has an invalid character");
    }
  std::size_t labels = 0, start = 0;
  while (true) {
    std::size_t dot = domain.find('.', start);
    std::string_view label = domain.substr(start, dot == domain.npos ? dot : dot - start);
    if (label.empty()) return fail(why, "email domain has an empty label");
    if (label.size() > 63) return fail(why, "email domain label is longer than 63 characters");
    if (label.front() == '-' || label.back() == '-')
      return fail(why, "email domain label starts or ends with '-'");
    for (unsigned char c : label)
      if (!kChars.alnum[c] && c != '-') return fail(why, "email domain has an invalid character");
    ++labels;
    if (dot == domain.npos) {
      if (labels < 2) return fail(why, "email domain has no '.'");
      bool alpha = label.size() >= 2;
      for (unsigned char c : label) alpha = alpha && kChars.alpha[c];
      if (!alpha) return fail(why, "email top-level domain is not alphabetic");
      return true;
    }
    start = dot + 1;
  }
}

void validate_row(RosterRow& row) {
  if (row.outcome != Outcome::pending) return;
  trim(row.student_id);
  trim(row.name);
  trim(row.email);
  auto too_long = [&](const char* field, const std::string& value, std::size_t limit) {
    if (value.size() <= limit) return false;
    row.outcome = Outcome::too_long;
    row.detail = std::string(field) + " is " + std::to_string(value.size()) +
                 " bytes, the limit is " + std::to_string(limit) + ": '" + echo_value(value) + "'";
    return true;
  };
  if (too_long("student_id", row.student_id, kMaxIdBytes) ||
      too_long("name", row.name, kMaxNameBytes) || too_long("email", row.email, kMaxEmailBytes)) {
    row.student_id = echo_value(row.student_id);
    return;
  }
  for (auto [field, value] : {std::pair{"student_id", &row.student_id},
                              std::pair{"name", &row.name}, std::pair{"email", &row.email}}) {
    if (value->find('\0') != std::string::npos) {
      row.outcome = Outcome::malformed;
      row.detail = std::string(field) + " contains a NUL character";
      row.student_id = echo_value(row.student_id);
      return;
    }
  }
  for (unsigned char c : row.student_id)
    if (c < 0x20 || c == 0x7F) {
      row.outcome = Outcome::malformed;
      row.detail = "student_id contains a control character: '" + echo_value(row.student_id) + "'";
      row.student_id = echo_value(row.student_id);
      return;
    }
  if (row.student_id.empty()) {
    row.outcome = Outcome::missing_id;
    row.detail = "student_id is empty";
  } else if (row.name.empty()) {
    row.outcome = Outcome::missing_name;
    row.detail = "name is empty";
  } else if (std::string why; !is_valid_email(row.email, &why)) {
    row.outcome = Outcome::bad_email;
    row.detail = row.email.empty() ? why : why + ": '" + echo_value(row.email) + "'";
  }
}

}  // namespace registrar
