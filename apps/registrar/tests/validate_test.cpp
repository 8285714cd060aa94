// registrar tests: the per-row validation rules.
#include "validate.hpp"

#include <gtest/gtest.h>

namespace registrar {
namespace {

RosterRow row(std::string id, std::string name, std::string email) {
  RosterRow r;
  r.student_id = std::move(id);
  r.name = std::move(name);
  r.email = std::move(email);
  return r;
}

TEST(Validate, ValidRowIsTrimmedAndStaysPending) {
  RosterRow r = row("  S1 ", "\tAnn Lee ", " ann@example.com\r");
  validate_row(r);
  EXPECT_EQ(r.outcome, Outcome::pending);
  EXPECT_EQ(r.student_id, "S1");
  EXPECT_EQ(r.name, "Ann Lee");
  EXPECT_EQ(r.email, "ann@example.com");
}

TEST(Validate, MissingId) {
  RosterRow r = row("  ", "Ann", "ann@example.com");
  validate_row(r);
  EXPECT_EQ(r.outcome, Outcome::missing_id);
  EXPECT_EQ(r.detail, "student_id is empty");
}

TEST(Validate, MissingName) {
  RosterRow r = row("S1", "", "ann@example.com");
  validate_row(r);
  EXPECT_EQ(r.outcome, Outcome::missing_name);
}

TEST(Validate, BadEmailSaysWhy) {
  RosterRow r = row("S1", "Ann", "ann at example.com");
  validate_row(r);
  EXPECT_EQ(r.outcome, Outcome::bad_email);
  EXPECT_EQ(r.detail, "email has no '@': 'ann at example.com'");
  RosterRow empty = row("S1", "Ann", "");
  validate_row(empty);
  EXPECT_EQ(empty.outcome, Outcome::bad_email);
  EXPECT_EQ(empty.detail, "email is empty");
}

TEST(Validate, AlreadyFailedRowIsLeftAlone) {
  RosterRow r = row("", "", "");
  r.outcome = Outcome::malformed;
  r.detail = "x";
  validate_row(r);
  EXPECT_EQ(r.outcome, Outcome::malformed);
  EXPECT_EQ(r.detail, "x");
}

TEST(Email, AcceptsOrdinaryAddresses) {
  for (const char* ok : {"a@b.co", "first.last@example.edu", "x+tag@sub.domain.org",
                         "o'brien@example.ie", "a-b_c@my-host.example.com", "A@EXAMPLE.COM"})
    EXPECT_TRUE(is_valid_email(ok)) << ok;
}

TEST(Email, RejectsBrokenAddresses) {
  struct Case {
    const char* email;
    const char* why;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"plain", "email has no '@'"},
           {"@example.com", "email has nothing before '@'"},
           {"a@", "email has no domain after '@'"},
           {"a@@b.cd", "email has more than one '@'"},
           {"a b@c.de", "email contains a space"},
           {".a@b.cd", "email local part has a misplaced '.'"},
           {"a..b@c.de", "email local part has a misplaced '.'"},
           {"a@localhost", "email domain has no '.'"},
           {"a@b..cd", "email domain has an empty label"},
           {"a@-b.cd", "email domain label starts or ends with '-'"},
           {"a@b_c.de", "email domain has an invalid character"},
           {"a@b.c1", "email top-level domain is not alphabetic"},
           {"a@b.c", "email top-level domain is not alphabetic"},
           {"a(b)@c.de", "email local part has an invalid character"},
       }) {
    std::string why;
    EXPECT_FALSE(is_valid_email(c.email, &why)) << c.email;
    EXPECT_EQ(why, c.why) << c.email;
  }
}

// Issue 9, item 8: field caps with a per-row result; echoed values are cut and escaped.
TEST(Validate, FieldCapsAndEchoedValuesAreBounded) {
  RosterRow id;
  id.student_id = std::string(65, '9');
  id.name = "Ann";
  id.email = "a@b.org";
  validate_row(id);
  EXPECT_EQ(id.outcome, Outcome::too_long);
  EXPECT_EQ(id.detail.substr(0, 37), "student_id is 65 bytes, the limit is ");
  EXPECT_LE(id.student_id.size(), 64u + 3);
  RosterRow email;
  email.student_id = "S1";
  email.name = "Ann";
  email.email = std::string(50 << 20, 'x') + "@b.org";  // 50 MB
  validate_row(email);
  EXPECT_EQ(email.outcome, Outcome::too_long);
  EXPECT_LT(email.detail.size(), 200u);
  RosterRow name;
  name.student_id = "S1";
  name.name = std::string(320, 'n');
  name.email = "\x1b[2Jevil@@x.org";
  validate_row(name);  // a 320-byte name is fine; the email echo is escaped
  EXPECT_EQ(name.outcome, Outcome::bad_email);
  EXPECT_EQ(name.detail, "email local part has an invalid character: '\\x1B[2Jevil@@x.org'");
  RosterRow nul;
  nul.student_id = "S1";
  nul.name = std::string("A\0b", 3);
  nul.email = "a@b.org";
  validate_row(nul);
  EXPECT_EQ(nul.outcome, Outcome::malformed);
  EXPECT_EQ(nul.detail, "name contains a NUL character");
}

}  // namespace
}  // namespace registrar
