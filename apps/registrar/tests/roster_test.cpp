// registrar tests: roster parsing (strict CSV, streamed JSON array, NDJSON) and format detection.
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
  EXPECT_EQ(rows[1].position, 3u);  // a short record is malformed (issue 9, item 2)
  EXPECT_EQ(rows[1].outcome, Outcome::malformed);
  EXPECT_EQ(rows[1].detail, "1 field, header has 4");
}

// ---- issue 9: strict input ------------------------------------------------------------

// Item 1: a stray quote makes its row malformed (line, column) and swallows nothing.
TEST(CsvStrict, StrayQuoteIsMalformedAndResynchronisesAtTheNextLine) {
  constexpr std::string_view text =
      "student_id,name,email\n"
      "S1,\"Doe\" Jr,a@b.org\n"
      "S2,Bob,b@b.org\n"
      "S3,\"Cy\",c@b.org\n"
      "S4,Ann \"Q\",d@b.org\n"
      "S5,Eve,e@b.org\n";
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, text.size()}) {
    auto rows = parse_chunked(text, InputFormat::csv, chunk);
    ASSERT_EQ(rows.size(), 5u) << "chunk " << chunk;
    EXPECT_EQ(rows[0].position, 2u);
    EXPECT_EQ(rows[0].outcome, Outcome::malformed);
    EXPECT_EQ(rows[0].detail,
              "parse error on line 2, column 8: extraneous or missing \" in quoted field");
    EXPECT_EQ(rows[0].student_id, "S1");
    EXPECT_EQ(rows[1].student_id, "S2");
    EXPECT_EQ(rows[1].name, "Bob");
    EXPECT_EQ(rows[1].outcome, Outcome::pending);
    EXPECT_EQ(rows[2].name, "Cy");
    EXPECT_EQ(rows[3].outcome, Outcome::malformed);
    EXPECT_EQ(rows[3].detail, "parse error on line 5, column 8: bare \" in non-quoted field");
    EXPECT_EQ(rows[4].student_id, "S5");
    EXPECT_EQ(rows[4].position, 6u);
  }
}

TEST(CsvStrict, UnterminatedQuoteAtEndOfFileIsOneMalformedRecord) {
  auto rows = parse_roster(
      "student_id,name,email\n"
      "S1,Ann,a@b.org\n"
      "S2,\"Bob,b@b.org\n"
      "S3,Cy,c@b.org\n",
      InputFormat::csv);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].outcome, Outcome::pending);
  EXPECT_EQ(rows[1].position, 3u);
  EXPECT_EQ(rows[1].outcome, Outcome::malformed);
  EXPECT_EQ(rows[1].detail, "unterminated quoted field (opened on line 3, column 4)");
}

// Item 2: fewer or more fields than the header.
TEST(CsvStrict, FieldCountMustMatchTheHeader) {
  auto rows = parse_roster(
      "student_id,email,name\n"
      "S1,jane@x.org,Doe, Jane\n"
      "S2,bob@x.org\n"
      "S3,cy@x.org,Cy\n",
      InputFormat::csv);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].outcome, Outcome::malformed);
  EXPECT_EQ(rows[0].detail, "4 fields, header has 3");
  EXPECT_EQ(rows[1].outcome, Outcome::malformed);
  EXPECT_EQ(rows[1].detail, "2 fields, header has 3");
  EXPECT_EQ(rows[2].outcome, Outcome::pending);
  EXPECT_EQ(rows[2].name, "Cy");
}

// Item 3: invalid UTF-8 and NUL bytes, with their byte offset.
TEST(CsvStrict, InvalidUtf8AndNulAreMalformedWithTheirOffset) {
  std::string text = "student_id,name,email\n";  // 22 bytes
  text += "S1,Ann\xFF,a@b.org\n";                // offset 28: 0xFF
  text += std::string("S2,B\0b,b@b.org\n", 15);  // NUL at 42
  text += "S3,Z\xC3\xBC\xE2\x82\xAC,c@b.org\n";  // valid: ü €
  text += "S4,\xED\xA0\x80,d@b.org\n";           // a UTF-16 surrogate: invalid
  auto rows = parse_roster(text, InputFormat::csv);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].outcome, Outcome::malformed);
  EXPECT_EQ(rows[0].detail, "invalid UTF-8 at byte offset 28 (line 2, column 7)");
  EXPECT_EQ(rows[1].outcome, Outcome::malformed);
  EXPECT_EQ(rows[1].detail, "NUL byte at byte offset 42 (line 3, column 5)");
  EXPECT_EQ(rows[2].outcome, Outcome::pending);
  EXPECT_EQ(rows[2].name, "Z\xC3\xBC\xE2\x82\xAC");
  EXPECT_EQ(rows[3].outcome, Outcome::malformed);
}

// Item 4: BOM + quoted header (R's write.csv); CR-only line ends count lines.
TEST(CsvStrict, BomBeforeAQuotedHeader) {
  constexpr std::string_view text =
      "\xEF\xBB\xBF\"student_id\",\"name\",\"email\"\n\"S1\",\"Ann\",\"a@b.org\"\n";
  for (std::size_t chunk : {std::size_t{1}, std::size_t{2}, text.size()}) {
    auto rows = parse_chunked(text, InputFormat::csv, chunk);
    ASSERT_EQ(rows.size(), 1u) << chunk;
    EXPECT_EQ(rows[0].student_id, "S1");
    EXPECT_EQ(rows[0].outcome, Outcome::pending);
  }
}

TEST(CsvStrict, CrLfAndCrOnlyLineEndsAllCountLines) {
  auto cr = parse_roster("student_id,name,email\rS1,A,a@b.org\rS2,\"B\rb\",b@b.org\rS3,C,c@b.org",
                         InputFormat::csv);
  ASSERT_EQ(cr.size(), 3u);
  EXPECT_EQ(cr[0].position, 2u);
  EXPECT_EQ(cr[1].position, 3u);
  EXPECT_EQ(cr[1].name, "B\rb");
  EXPECT_EQ(cr[2].position, 5u);
  auto mixed = parse_roster("student_id,name,email\r\nS1,A,a@b.org\rS2,B,b@b.org\nS3,C,c@b.org\r\n",
                            InputFormat::csv);
  ASSERT_EQ(mixed.size(), 3u);
  EXPECT_EQ(mixed[0].position, 2u);
  EXPECT_EQ(mixed[1].position, 3u);
  EXPECT_EQ(mixed[2].position, 4u);
}

// Item 8: echoed values are cut and escaped; huge fields do not grow memory.
TEST(EchoValue, TruncatesAndEscapesControlCharacters) {
  EXPECT_EQ(echo_value("a\x1b[31mb\n"), "a\\x1B[31mb\\n");
  EXPECT_EQ(echo_value(std::string(100, 'x')), std::string(64, 'x') + "\xE2\x80\xA6");
  // Never cut inside a UTF-8 character.
  EXPECT_EQ(echo_value("\xC3\xBC\xC3\xBC", 1), "\xC3\xBC\xE2\x80\xA6");
}

TEST(CsvStrict, HugeFieldIsMalformedAndNotBuffered) {
  auto parser = make_parser(InputFormat::csv);
  std::vector<RosterRow> rows;
  parser->feed("student_id,name,email\nS1,Ann,", rows);
  std::string big(1 << 20, 'e');
  for (int i = 0; i < 50; ++i) {
    parser->feed(big, rows);
    ASSERT_LT(parser->buffered(), 100u * 1024);
  }
  parser->feed("@b.org\nS2,Bob,b@b.org\n", rows);
  parser->finish(rows);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].outcome, Outcome::malformed);
  EXPECT_EQ(rows[0].detail, "field 3 is longer than 65536 bytes");
  EXPECT_EQ(rows[1].outcome, Outcome::pending);
}

// Item 13: a JSON array is parsed element by element, in bounded memory.
TEST(JsonStream, ArrayIsParsedIncrementallyInBoundedMemory) {
  auto parser = make_parser(InputFormat::json);
  std::vector<RosterRow> rows;
  parser->feed("[", rows);
  std::string element = R"({"student_id":"S","name":"N","email":"e@x.org"},)";
  std::string chunk;
  for (int i = 0; i < 2000; ++i) chunk += element;
  for (int i = 0; i < 100; ++i) {  // 200 000 elements, ~10 MB
    parser->feed(chunk, rows);
    ASSERT_LT(parser->buffered(), 4096u) << "after chunk " << i;
    ASSERT_EQ(rows.size(), 2000u * (i + 1)) << "elements are delivered as they complete";
  }
  parser->feed(R"({"student_id":"last","name":"N","email":"e@x.org"}, 7 ])", rows);
  parser->finish(rows);
  ASSERT_EQ(rows.size(), 200002u);
  EXPECT_EQ(rows[200000].student_id, "last");
  EXPECT_EQ(rows[200000].position, 200000u);
  EXPECT_EQ(rows[200001].outcome, Outcome::malformed);
}

TEST(JsonStream, BrokenElementsAndDocuments) {
  auto rows = parse_roster(
      R"([{"student_id":"a,]}[","name":"x","email":"e@x.org"}, {"a":1 2}, {"student_id":"b"}])",
      InputFormat::json);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].student_id, "a,]}[");
  EXPECT_EQ(rows[1].outcome, Outcome::malformed);
  EXPECT_EQ(rows[2].student_id, "b");
  EXPECT_THROW(parse_roster(R"([{"student_id":"a"})", InputFormat::json), RosterError);
  EXPECT_THROW(parse_roster(R"({"student_id":"a"})", InputFormat::json), RosterError);
  EXPECT_THROW(parse_roster(R"([] x)", InputFormat::json), RosterError);
  EXPECT_TRUE(parse_roster(" [ ] ", InputFormat::json).empty());
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
