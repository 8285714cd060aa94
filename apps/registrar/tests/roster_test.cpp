// registrar tests: roster parsing (CSV via libcsv, JSON array, NDJSON) and format detection.
#include "roster.hpp"

#include <gtest/gtest.h>

namespace registrar {
namespace {

// Feeds `text` in pieces of `chunk` bytes.
std::vector<RosterRow> parse_chunked(std::string_view text, InputFormat f, std::size_t chunk) {
  auto parser = make_parser(f);
  std::vector<RosterRow> rows;
  for (std::size_t i = 0; i < text.size(); i += chunk) parser->feed(text.substr(i, chunk), rows);
  parser->finish(rows);
  return rows;
}

constexpr std::string_view kTrickyCsv =
    "student_id,name,email\r\n"                     // 1
    "S1,\"Smith, John\",john@example.com\r\n"       // 2: embedded comma, CRLF
    "\r\n"                                          // 3: blank line
    "S2,\"two\nline\n\nname\",two@example.com\r\n"  // 4-7: embedded newlines
    "   \n"                                         // 8: only spaces
    "S3,\"He said \"\"hi\"\"\",hi@example.com\n"    // 9: escaped quotes
    "\"S\n4\",n,four@example.com";                  // 10-11: no final newline

TEST(Csv, QuotesCommasNewlinesCrlfAndStartLines) {
  auto rows = parse_roster(kTrickyCsv, InputFormat::csv);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].position, 2u);
  EXPECT_EQ(rows[0].student_id, "S1");
  EXPECT_EQ(rows[0].name, "Smith, John");
  EXPECT_EQ(rows[0].email, "john@example.com");
  EXPECT_EQ(rows[1].position, 4u);
  EXPECT_EQ(rows[1].name, "two\nline\n\nname");
  EXPECT_EQ(rows[2].position, 9u);
  EXPECT_EQ(rows[2].name, "He said \"hi\"");
  EXPECT_EQ(rows[3].position, 10u);
  EXPECT_EQ(rows[3].student_id, "S\n4");
  EXPECT_EQ(rows[3].email, "four@example.com");
  for (const auto& r : rows) EXPECT_EQ(r.outcome, Outcome::pending);
}

TEST(Csv, AnyChunkingGivesTheSameRows) {
  auto whole = parse_roster(kTrickyCsv, InputFormat::csv);
  for (std::size_t chunk = 1; chunk <= kTrickyCsv.size(); ++chunk) {
    auto rows = parse_chunked(kTrickyCsv, InputFormat::csv, chunk);
    ASSERT_EQ(rows.size(), whole.size()) << "chunk " << chunk;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(rows[i].position, whole[i].position) << "chunk " << chunk << " row " << i;
      EXPECT_EQ(rows[i].name, whole[i].name) << "chunk " << chunk << " row " << i;
    }
  }
}

TEST(Csv, HeaderInAnyOrderWithExtraColumnsAndBom) {
  auto rows = parse_roster(
      "\xEF\xBB\xBF"
      "Email,extra,NAME , student_id\n"
      "a@b.cd,x,Ann,7\n"
      "short\n",
      InputFormat::csv);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].student_id, "7");
  EXPECT_EQ(rows[0].name, "Ann");
  EXPECT_EQ(rows[0].email, "a@b.cd");
  EXPECT_EQ(rows[1].position, 3u);  // a short record: the missing fields are empty
  EXPECT_EQ(rows[1].email, "short");
  EXPECT_EQ(rows[1].student_id, "");
}

TEST(Csv, HeaderWithoutRequiredColumnsIsAnError) {
  try {
    parse_roster("id,name,email\n1,a,a@b.cd\n", InputFormat::csv);
    FAIL() << "no error";
  } catch (const RosterError& e) {
    EXPECT_NE(std::string(e.what()).find("student_id, name and email"), std::string::npos)
        << e.what();
  }
}

TEST(Csv, EmptyInputIsAnError) {
  EXPECT_THROW(parse_roster("", InputFormat::csv), RosterError);
  EXPECT_THROW(parse_roster("\n\n", InputFormat::csv), RosterError);
}

TEST(Csv, HeaderOnlyHasNoRows) {
  EXPECT_TRUE(parse_roster("student_id,name,email\n", InputFormat::csv).empty());
}

TEST(Json, ArrayElementsArePositionedByIndex) {
  auto rows = parse_roster(
      R"([{"student_id":"A","name":"Ann","email":"a@b.cd"},
          {"student_id":42,"name":"Bob"},
          7,
          {"student_id":"C","name":["x"],"email":"c@d.ef"}])",
      InputFormat::json);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].position, 0u);
  EXPECT_EQ(rows[0].student_id, "A");
  EXPECT_EQ(rows[1].position, 1u);
  EXPECT_EQ(rows[1].student_id, "42");  // numbers become text
  EXPECT_EQ(rows[1].email, "");
  EXPECT_EQ(rows[1].outcome, Outcome::pending);
  EXPECT_EQ(rows[2].outcome, Outcome::malformed);
  EXPECT_EQ(rows[2].detail, "expected an object, got number");
  EXPECT_EQ(rows[3].position, 3u);
  EXPECT_EQ(rows[3].outcome, Outcome::malformed);
  EXPECT_EQ(rows[3].detail, "name must be a string, got array");
}

TEST(Json, ChunkedArrayParses) {
  std::string doc = R"([{"student_id":"A","name":"Ann","email":"a@b.cd"}, {"student_id":"B"}])";
  EXPECT_EQ(parse_chunked(doc, InputFormat::json, 3).size(), 2u);
}

TEST(Json, BrokenDocumentsAreErrors) {
  EXPECT_THROW(parse_roster(R"([{"student_id":"A"},)", InputFormat::json), RosterError);
  EXPECT_THROW(parse_roster(R"({"student_id":"A"})", InputFormat::json), RosterError);
  EXPECT_THROW(parse_roster("", InputFormat::json), RosterError);
}

TEST(Ndjson, LinesBlankLinesCrlfAndMalformedLines) {
  std::string doc =
      "{\"student_id\":\"A\",\"name\":\"Ann\",\"email\":\"a@b.cd\"}\r\n"  // 1
      "\n"                                                                // 2
      "{\"student_id\":\"B\",\r\n"                                        // 3: broken
      "  \n"                                                              // 4
      "[1,2]\n"                                                           // 5
      "{\"student_id\":\"C\",\"name\":\"Cy\",\"email\":\"c@d.ef\"}";      // 6
  for (std::size_t chunk : {1, 2, 5, 1000}) {
    auto rows = parse_chunked(doc, InputFormat::ndjson, chunk);
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[0].position, 1u);
    EXPECT_EQ(rows[0].name, "Ann");
    EXPECT_EQ(rows[1].position, 3u);
    EXPECT_EQ(rows[1].outcome, Outcome::malformed);
    EXPECT_EQ(rows[1].detail.rfind("invalid JSON: ", 0), 0u) << rows[1].detail;
    EXPECT_EQ(rows[2].position, 5u);
    EXPECT_EQ(rows[2].detail, "expected an object, got array");
    EXPECT_EQ(rows[3].position, 6u);
    EXPECT_EQ(rows[3].student_id, "C");
  }
}

TEST(Detect, ByNameExtensionAndFirstCharacter) {
  EXPECT_EQ(input_format_from_name("csv"), InputFormat::csv);
  EXPECT_EQ(input_format_from_name("json"), InputFormat::json);
  EXPECT_EQ(input_format_from_name("ndjson"), InputFormat::ndjson);
  EXPECT_EQ(input_format_from_name("xml"), std::nullopt);
  EXPECT_EQ(input_format_from_extension("a/roster.CSV"), InputFormat::csv);
  EXPECT_EQ(input_format_from_extension("r.ndjson"), InputFormat::ndjson);
  EXPECT_EQ(input_format_from_extension("r.jsonl"), InputFormat::ndjson);
  EXPECT_EQ(input_format_from_extension("r.json"), std::nullopt);
  EXPECT_TRUE(has_json_extension("r.json"));
  EXPECT_FALSE(has_json_extension("r.jsonl"));
  EXPECT_EQ(sniff_input_format("  \n [{}]"), InputFormat::json);
  EXPECT_EQ(sniff_input_format("\xEF\xBB\xBF{\"a\":1}"), InputFormat::ndjson);
  EXPECT_EQ(sniff_input_format("student_id,name,email"), InputFormat::csv);
  EXPECT_EQ(position_label(InputFormat::json), "index");
  EXPECT_EQ(position_label(InputFormat::csv), "line");
}

TEST(Outcome, NamesAndFailureClasses) {
  EXPECT_EQ(outcome_name(Outcome::already_registered), "already_registered");
  EXPECT_EQ(outcome_name(Outcome::course_full), "course_full");
  EXPECT_EQ(outcome_name(Outcome::duplicate_id), "duplicate_id");
  EXPECT_TRUE(is_failure(Outcome::course_full));
  EXPECT_TRUE(is_failure(Outcome::bad_email));
  EXPECT_FALSE(is_failure(Outcome::registered));
  EXPECT_FALSE(is_failure(Outcome::already_registered));
}

}  // namespace
}  // namespace registrar
