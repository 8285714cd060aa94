// registrar tests: the goroutine pipeline in-process (rules, order, exact counts, errors).
#include "pipeline.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <set>

#include "generate.hpp"
#include "test_util.hpp"

namespace registrar {
namespace {

using testing::in_goro;
using testing::TempDir;

struct RunResult {
  Summary summary;
  std::vector<RosterRow> rows;
};

RunResult register_text(Store& store, std::int64_t course_id, std::string text, InputFormat f,
                        PipelineConfig cfg = {}) {
  VectorSink sink;
  Summary s = in_goro([&] {
    return register_roster(store, course_id, f, string_reader(std::move(text)), sink, cfg);
  });
  EXPECT_TRUE(sink.closed());
  return {s, sink.rows()};
}

constexpr const char* kRoster =
    "student_id,name,email\n"
    "S1,Ann,ann@example.com\n"           // 2 registered
    ",Nobody,nobody@example.com\n"       // 3 missing_id
    "S2,,two@example.com\n"              // 4 missing_name
    "S3,Cy,cy-at-example.com\n"          // 5 bad_email
    "S4,Dee,dee@example.com\n"           // 6 registered
    "S1,Ann Again,ann2@example.com\n"    // 7 duplicate_id (of line 2)
    "S3,Cy,cy@example.com\n"             // 8 registered: the earlier S3 row was invalid
    "S5,\"Eve, Jr.\",eve@example.com\n"  // 9 course_full (capacity 3)
    "S6,Fay,fay@example.com\n";          // 10 course_full

TEST(Pipeline, EachRuleWithExactCountsInInputOrder) {
  TempDir dir;
  Store store(dir.file("r.db"));
  Course c = store.add_course("Intro", 3);
  RunResult run = register_text(store, c.id, kRoster, InputFormat::csv);
  const std::vector<std::pair<std::uint64_t, Outcome>> expected = {
      {2, Outcome::registered}, {3, Outcome::missing_id},  {4, Outcome::missing_name},
      {5, Outcome::bad_email},  {6, Outcome::registered},  {7, Outcome::duplicate_id},
      {8, Outcome::registered}, {9, Outcome::course_full}, {10, Outcome::course_full}};
  ASSERT_EQ(run.rows.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(run.rows[i].position, expected[i].first) << i;
    EXPECT_EQ(run.rows[i].outcome, expected[i].second) << "line " << run.rows[i].position;
  }
  EXPECT_EQ(run.rows[5].detail, "student_id also on line 2");
  EXPECT_EQ(run.summary.rows, 9u);
  EXPECT_EQ(run.summary.count(Outcome::registered), 3u);
  EXPECT_EQ(run.summary.count(Outcome::course_full), 2u);
  EXPECT_EQ(run.summary.failed(), 6u);
  EXPECT_EQ(store.registered_count(c.id), 3);
}

TEST(Pipeline, SecondRunIsAlreadyRegistered) {
  TempDir dir;
  Store store(dir.file("r.db"));
  Course c = store.add_course("Intro", 3);
  register_text(store, c.id, kRoster, InputFormat::csv);
  RunResult again = register_text(store, c.id, kRoster, InputFormat::csv);
  EXPECT_EQ(again.summary.count(Outcome::registered), 0u);
  EXPECT_EQ(again.summary.count(Outcome::already_registered), 3u);
  EXPECT_EQ(again.summary.count(Outcome::course_full), 2u);
  EXPECT_EQ(store.registered_count(c.id), 3);
}

TEST(Pipeline, JsonArrayAndNdjsonRows) {
  TempDir dir;
  Store store(dir.file("r.db"));
  Course c = store.add_course("Intro", 10);
  RunResult json = register_text(store, c.id,
                                 R"([{"student_id":"J1","name":"Jo","email":"jo@example.com"},
                               {"student_id":"J1","name":"Jo","email":"jo@example.com"},
                               "oops"])",
                                 InputFormat::json);
  ASSERT_EQ(json.rows.size(), 3u);
  EXPECT_EQ(json.rows[0].outcome, Outcome::registered);
  EXPECT_EQ(json.rows[1].outcome, Outcome::duplicate_id);
  EXPECT_EQ(json.rows[1].detail, "student_id also on index 0");
  EXPECT_EQ(json.rows[2].outcome, Outcome::malformed);
  EXPECT_EQ(json.rows[2].position, 2u);
  RunResult nd =
      register_text(store, c.id,
                    "{\"student_id\":\"J1\",\"name\":\"Jo\",\"email\":\"jo@example.com\"}\n"
                    "\n{\"student_id\":\"N2\",\"name\":\"Ned\",\"email\":\"ned@x.org\"}\n",
                    InputFormat::ndjson);
  ASSERT_EQ(nd.rows.size(), 2u);
  EXPECT_EQ(nd.rows[0].outcome, Outcome::already_registered);
  EXPECT_EQ(nd.rows[1].outcome, Outcome::registered);
  EXPECT_EQ(nd.rows[1].position, 3u);
}

// Tiny batches and transactions, many validators: batches overtake each other and must be
// put back in order; every row gets exactly one result.
TEST(Pipeline, ReordersBatchesFromManyValidators) {
  TempDir dir;
  Store store(dir.file("r.db"));
  Course c = store.add_course("Intro", 1500);
  std::string text;
  GenOptions gen;
  gen.count = 2000;
  gen.seed = 7;
  GenStats stats = generate_roster(gen, [&](std::string_view s) { text += s; });
  PipelineConfig cfg;
  cfg.validators = 16;
  cfg.parse_batch = 3;
  cfg.txn_rows = 7;
  cfg.read_chunk = 97;
  cfg.queue_depth = 1;
  RunResult run = register_text(store, c.id, text, InputFormat::csv, cfg);
  ASSERT_EQ(run.rows.size(), stats.rows);
  for (std::size_t i = 1; i < run.rows.size(); ++i)
    ASSERT_LT(run.rows[i - 1].position, run.rows[i].position) << i;
  std::set<Outcome> seen;
  for (const auto& r : run.rows) {
    EXPECT_NE(r.outcome, Outcome::pending);
    seen.insert(r.outcome);
  }
  EXPECT_EQ(run.summary.count(Outcome::registered), 1500u);
  EXPECT_EQ(run.summary.count(Outcome::course_full), stats.valid_unique - 1500);
  EXPECT_EQ(run.summary.count(Outcome::duplicate_id), stats.duplicates);
  EXPECT_EQ(run.summary.count(Outcome::missing_id) + run.summary.count(Outcome::missing_name) +
                run.summary.count(Outcome::bad_email),
            stats.invalid);
  EXPECT_EQ(store.registered_count(c.id), 1500);
}

TEST(Pipeline, GeneratedRosterInEveryFormat) {
  for (InputFormat f : {InputFormat::csv, InputFormat::json, InputFormat::ndjson}) {
    TempDir dir;
    Store store(dir.file("r.db"));
    Course c = store.add_course("Intro", 100000);
    std::string text;
    GenOptions gen;
    gen.count = 5000;
    gen.format = f;
    GenStats stats = generate_roster(gen, [&](std::string_view s) { text += s; });
    RunResult run = register_text(store, c.id, text, f);
    EXPECT_EQ(run.rows.size(), stats.rows) << input_format_name(f);
    EXPECT_EQ(run.summary.count(Outcome::registered), stats.valid_unique) << input_format_name(f);
    EXPECT_EQ(store.registered_count(c.id), static_cast<std::int64_t>(stats.valid_unique));
  }
}

TEST(Pipeline, BrokenDocumentFailsTheRun) {
  TempDir dir;
  Store store(dir.file("r.db"));
  Course c = store.add_course("Intro", 10);
  VectorSink sink;
  EXPECT_THROW(in_goro([&] {
                 register_roster(store, c.id, InputFormat::csv, string_reader("id,name\n1,a\n"),
                                 sink);
               }),
               RosterError);
  EXPECT_TRUE(sink.rows().empty());
  EXPECT_THROW(
      in_goro([&] { register_roster(store, c.id, InputFormat::json, string_reader("[{"), sink); }),
      RosterError);
}

TEST(Pipeline, ReadErrorFailsTheRun) {
  TempDir dir;
  Store store(dir.file("r.db"));
  Course c = store.add_course("Intro", 10);
  VectorSink sink;
  ReadFn failing = [](char*, std::size_t) -> std::size_t {
    throw std::runtime_error("disk on fire");
  };
  try {
    in_goro([&] { register_roster(store, c.id, InputFormat::csv, failing, sink); });
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "disk on fire");
  }
}

// A failure cancels the run before the stages downstream see the end of their input: the
// rows parsed before a broken document end (one partial transaction here) are not committed.
TEST(Pipeline, BrokenDocumentCommitsNothingAfterTheFailure) {
  TempDir dir;
  Store store(dir.file("r.db"));
  Course c = store.add_course("Intro", 1000);
  std::string doc = "[";
  for (int i = 0; i < 300; ++i)
    doc += "{\"student_id\":\"A" + std::to_string(i) + "\",\"name\":\"N\",\"email\":\"a" +
           std::to_string(i) + "@x.org\"},";
  doc += "{\"student_id\":";
  for (int round = 0; round < 20; ++round) {
    VectorSink sink;
    PipelineConfig cfg;
    cfg.parse_batch = 10;
    cfg.read_chunk = 256;
    EXPECT_THROW(in_goro([&] {
                   register_roster(store, c.id, InputFormat::json, string_reader(doc), sink, cfg);
                 }),
                 RosterError);
    EXPECT_TRUE(sink.rows().empty());
    EXPECT_FALSE(sink.closed());
    EXPECT_EQ(store.registered_count(c.id), 0);
  }
}

// The sink failing does not leave the stages upstream blocked: the run ends with its error.
class FailingSink final : public ResultSink {
 public:
  void write(std::span<const RosterRow>) override { throw std::runtime_error("sink gone"); }
  void close() override {}
};

TEST(Pipeline, FailingSinkFailsTheRunWithoutHanging) {
  TempDir dir;
  Store store(dir.file("r.db"));
  Course c = store.add_course("Intro", 100000);
  std::string roster = "student_id,name,email\n";
  for (int i = 0; i < 20000; ++i)
    roster += "A" + std::to_string(i) + ",N,a" + std::to_string(i) + "@x.org\n";
  FailingSink sink;
  PipelineConfig cfg;
  cfg.txn_rows = 100;
  cfg.parse_batch = 50;
  cfg.queue_depth = 1;
  try {
    in_goro(
        [&] { register_roster(store, c.id, InputFormat::csv, string_reader(roster), sink, cfg); });
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "sink gone");
  }
  EXPECT_LT(store.registered_count(c.id), 20000);
}

TEST(Pipeline, LockedDatabaseFailsTheRunWithoutHanging) {
  TempDir dir;
  std::string db = dir.file("r.db");
  std::int64_t course_id;
  {
    Store setup(db);
    course_id = setup.add_course("Intro", 10).id;
  }
  Store store(db, StoreOptions{false, 100});
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(holder, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  VectorSink sink;
  EXPECT_THROW(in_goro([&] {
                 register_roster(store, course_id, InputFormat::csv, string_reader(kRoster), sink);
               }),
               DbLocked);
  sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(holder);
  EXPECT_TRUE(sink.rows().empty());
  EXPECT_EQ(store.registered_count(course_id), 0);
}

// Issue 9, item 6: cancelling the caller's context (what the CLI does on SIGINT/SIGTERM)
// stops the run at a transaction boundary: the committed rows have their results, nothing
// else is reported, and register_roster() returns an interrupted summary instead of throwing.
// Here "Ctrl-C" comes as soon as the first transaction's results reach the sink.
class CancellingSink final : public ResultSink {
 public:
  explicit CancellingSink(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  void write(std::span<const RosterRow> rows) override {
    inner_.write(rows);
    cancel_();
  }
  void close() override { inner_.close(); }
  const VectorSink& inner() const { return inner_; }

 private:
  std::function<void()> cancel_;
  VectorSink inner_;
};

TEST(Pipeline, CancelledParentInterruptsAtATransactionBoundary) {
  TempDir dir;
  Store store(dir.file("r.db"));
  Course c = store.add_course("Intro", 1000000);
  std::string roster = "student_id,name,email\n";
  for (int i = 0; i < 200000; ++i)
    roster += "A" + std::to_string(i) + ",N,a" + std::to_string(i) + "@x.org\n";
  std::optional<CancellingSink> sink;
  Summary s = in_goro([&] {
    auto cancellable = goro::with_cancel(goro::Context::background());
    const goro::Context ctx = cancellable.first;
    const std::function<void()> cancel = cancellable.second;
    sink.emplace(cancel);
    PipelineConfig cfg;
    cfg.read_chunk = 4096;
    cfg.parent = ctx;
    return register_roster(store, c.id, InputFormat::csv, string_reader(roster), *sink, cfg);
  });
  EXPECT_TRUE(s.interrupted);
  const auto committed = static_cast<std::uint64_t>(store.registered_count(c.id));
  EXPECT_GE(committed, 1000u);
  EXPECT_EQ(committed % 1000, 0u) << "whole transactions only";
  EXPECT_LT(committed, 200000u);
  EXPECT_EQ(sink->inner().rows().size(), committed);
  EXPECT_EQ(s.rows, committed);
  EXPECT_EQ(s.count(Outcome::registered), committed);
  EXPECT_TRUE(sink->inner().closed());
  for (const RosterRow& row : sink->inner().rows()) EXPECT_EQ(row.outcome, Outcome::registered);
}

TEST(Output, FormatsRowsAsTableCsvAndJson) {
  RosterRow a;
  a.position = 2;
  a.student_id = "S1";
  a.outcome = Outcome::registered;
  RosterRow b;
  b.position = 3;
  b.student_id = "S,2";
  b.outcome = Outcome::bad_email;
  b.detail = "email has no '@': 'x \"y\"'";
  std::vector<RosterRow> rows = {a, b};
  auto render = [&](OutputFormat f, std::string_view label) {
    ResultFormatter fmt(f, label);
    std::string out;
    fmt.begin(out);
    fmt.rows(rows, out);
    fmt.end(out);
    return out;
  };
  EXPECT_EQ(render(OutputFormat::csv, "line"),
            "line,student_id,result,detail\n2,S1,registered,\n"
            "3,\"S,2\",bad_email,\"email has no '@': 'x \"\"y\"\"'\"\n");
  EXPECT_EQ(render(OutputFormat::json, "index"),
            "[\n{\"index\":2,\"student_id\":\"S1\",\"result\":\"registered\",\"detail\":\"\"},\n"
            "{\"index\":3,\"student_id\":\"S,2\",\"result\":\"bad_email\",\"detail\":\"email has "
            "no '@': 'x \\\"y\\\"'\"}\n]\n");
  std::string table = render(OutputFormat::table, "line");
  EXPECT_EQ(table.substr(0, table.find('\n')), "LINE     STUDENT_ID   RESULT             DETAIL");
  EXPECT_NE(table.find("2        S1           registered\n"), std::string::npos) << table;
  ResultFormatter empty(OutputFormat::json, "line");
  std::string out;
  empty.begin(out);
  empty.end(out);
  EXPECT_EQ(out, "[]\n");
}

}  // namespace
}  // namespace registrar
