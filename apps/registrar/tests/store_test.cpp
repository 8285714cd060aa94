// registrar tests: the SQLite store (schema, courses, capacity, locking, open errors).
#include "store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "test_util.hpp"

namespace registrar {
namespace {

using testing::TempDir;

std::vector<RosterRow> students(int first, int count) {
  std::vector<RosterRow> rows(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    rows[i].position = static_cast<std::uint64_t>(i + 2);
    rows[i].student_id = "S" + std::to_string(first + i);
    rows[i].name = "Student " + std::to_string(first + i);
    rows[i].email = "s" + std::to_string(first + i) + "@example.edu";
  }
  return rows;
}

std::vector<RosterRow*> ptrs(std::vector<RosterRow>& rows) {
  std::vector<RosterRow*> out;
  for (auto& r : rows) out.push_back(&r);
  return out;
}

int count(const std::vector<RosterRow>& rows, Outcome o) {
  int n = 0;
  for (const auto& r : rows) n += r.outcome == o;
  return n;
}

// Holds the write lock of a database through a connection of its own.
class ExclusiveLock {
 public:
  explicit ExclusiveLock(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ~ExclusiveLock() {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST(Store, CreatesSchemaInWalMode) {
  TempDir dir;
  std::string db = dir.file("r.db");
  { Store store(db); }
  EXPECT_EQ(testing::sql_int(db,
                             "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                             "name IN ('courses','students','registrations')"),
            3);
  EXPECT_EQ(testing::sql_int(db, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

TEST(Store, AddFindAndListCourses) {
  TempDir dir;
  Store store(dir.file("r.db"));
  Course c = store.add_course("Intro to Golang", 500);
  EXPECT_GT(c.id, 0);
  auto found = store.find_course("Intro to Golang");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, c.id);
  EXPECT_EQ(found->capacity, 500);
  EXPECT_FALSE(store.find_course("intro to golang"));
  store.add_course("Algebra", 0);
  auto all = store.courses();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "Algebra");
}

TEST(Store, DuplicateCourseIsAClearError) {
  TempDir dir;
  Store store(dir.file("r.db"));
  store.add_course("Intro", 5);
  try {
    store.add_course("Intro", 9);
    FAIL() << "no error";
  } catch (const StoreError& e) {
    EXPECT_STREQ(e.what(), "course 'Intro' already exists");
  }
  EXPECT_THROW(store.add_course("Negative", -1), StoreError);
}

TEST(Store, CapacityIsNeverExceededAndRepeatsAreAlreadyRegistered) {
  TempDir dir;
  Store store(dir.file("r.db"));
  Course c = store.add_course("Intro", 25);
  auto first = students(0, 10);
  store.register_batch(c.id, ptrs(first));
  EXPECT_EQ(count(first, Outcome::registered), 10);
  auto second = students(5, 30);  // S5..S34: 5 already in, 15 fit, 10 do not
  store.register_batch(c.id, ptrs(second));
  EXPECT_EQ(count(second, Outcome::already_registered), 5);
  EXPECT_EQ(count(second, Outcome::registered), 15);
  EXPECT_EQ(count(second, Outcome::course_full), 10);
  EXPECT_EQ(second.back().detail, "course is at its capacity of 25");
  EXPECT_EQ(store.registered_count(c.id), 25);
  auto again = students(0, 3);  // full now, but already registered wins over course_full
  store.register_batch(c.id, ptrs(again));
  EXPECT_EQ(count(again, Outcome::already_registered), 3);
  EXPECT_EQ(store.registrations(c.id).size(), 25u);
}

TEST(Store, TwoConnectionsShareTheCapacity) {
  TempDir dir;
  std::string db = dir.file("r.db");
  Store a(db), b(db);
  Course c = a.add_course("Intro", 30);
  // Interleaved batches from two connections (two processes, as far as SQLite knows): each
  // must see the other's commits although it caches its own count.
  int registered = 0;
  for (int round = 0; round < 4; ++round) {
    auto ra = students(round * 100, 5);
    auto rb = students(round * 100 + 50, 5);
    a.register_batch(c.id, ptrs(ra));
    b.register_batch(c.id, ptrs(rb));
    registered += count(ra, Outcome::registered) + count(rb, Outcome::registered);
  }
  EXPECT_EQ(registered, 30);
  EXPECT_EQ(testing::sql_int(db, "SELECT count(*) FROM registrations"), 30);
}

TEST(Store, LockedDatabaseFailsWithinTheBusyTimeout) {
  TempDir dir;
  std::string db = dir.file("r.db");
  std::int64_t course_id;
  {
    Store setup(db);
    course_id = setup.add_course("Intro", 10).id;
  }
  Store store(db, StoreOptions{false, 100});
  ExclusiveLock lock(db);
  auto rows = students(0, 3);
  try {
    store.register_batch(course_id, ptrs(rows));
    FAIL() << "no error";
  } catch (const DbLocked& e) {
    EXPECT_NE(std::string(e.what()).find("is locked by another writer"), std::string::npos);
  }
  EXPECT_EQ(rows[0].outcome, Outcome::pending);  // nothing was decided
  EXPECT_THROW(store.add_course("Other", 1), DbLocked);
}

TEST(Store, UnopenablePathsAreClearErrors) {
  TempDir dir;
  try {
    Store store(dir.file("no/such/dir/r.db"));
    FAIL() << "no error";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open database"), std::string::npos) << e.what();
  }
  try {
    Store store(dir.file("missing.db"), StoreOptions{false, 100});
    FAIL() << "no error";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  testing::write_file(dir.file("text.db"), std::string(4096, 'x'));
  EXPECT_THROW(Store(dir.file("text.db")), StoreError);
}

// Issue 9, item 11: the seats taken are a counter on the course row, kept in the registering
// transaction and checked by the schema, so the capacity check never counts registrations.
TEST(Store, TakenCounterIsKeptInTheTransactionAndChecked) {
  TempDir dir;
  std::string db = dir.file("r.db");
  Store store(db);
  Course c = store.add_course("Intro", 3);
  auto rows = students(0, 5);
  store.register_batch(c.id, ptrs(rows));
  EXPECT_EQ(testing::sql_int(db, "SELECT taken FROM courses WHERE id = " + std::to_string(c.id)),
            3);
  EXPECT_EQ(store.courses()[0].registered, 3);
  // Another connection registers through its own Store: ours sees the counter it left.
  {
    Store other(db);
    other.set_capacity("Intro", 4);
    auto more = students(10, 1);
    other.register_batch(c.id, ptrs(more));
    EXPECT_EQ(more[0].outcome, Outcome::registered);
  }
  auto late = students(20, 1);
  store.register_batch(c.id, ptrs(late));
  EXPECT_EQ(late[0].outcome, Outcome::course_full);
  // The schema refuses a counter above the capacity.
  sqlite3* conn = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &conn), SQLITE_OK);
  int rc = sqlite3_exec(conn, "UPDATE courses SET taken = capacity + 1", nullptr, nullptr, nullptr);
  sqlite3_close(conn);
  EXPECT_EQ(rc, SQLITE_CONSTRAINT);
  // Unregistering gives the seats back.
  std::vector<std::string> ids = {"S0", "S404"};
  EXPECT_EQ(store.unregister(c.id, ids), (std::vector<bool>{true, false}));
  EXPECT_EQ(store.courses()[0].registered, 3);
}

TEST(Store, Version1DatabaseIsMigrated) {
  TempDir dir;
  std::string db = dir.file("v1.db");
  sqlite3* conn = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &conn), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(conn, R"sql(
PRAGMA journal_mode = WAL;
CREATE TABLE courses(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,
  capacity INTEGER NOT NULL CHECK(capacity >= 0));
CREATE TABLE students(student_id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL)
  WITHOUT ROWID;
CREATE TABLE registrations(course_id INTEGER NOT NULL REFERENCES courses(id),
  student_id TEXT NOT NULL REFERENCES students(student_id), registered_at TEXT NOT NULL,
  PRIMARY KEY(course_id, student_id)) WITHOUT ROWID;
INSERT INTO courses VALUES(1, 'Old', 3), (2, 'Empty', 5);
INSERT INTO students VALUES('A', 'Ann', 'a@x.org'), ('B', 'Bob', 'b@x.org');
INSERT INTO registrations VALUES(1, 'A', 't'), (1, 'B', 't');
PRAGMA user_version = 1;
)sql",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(conn);
  Store store(db, StoreOptions{false, 1000});
  EXPECT_EQ(testing::sql_int(db, "PRAGMA user_version"), 2);
  EXPECT_EQ(testing::sql_int(db, "SELECT taken FROM courses WHERE id = 1"), 2);
  EXPECT_EQ(testing::sql_int(db, "SELECT taken FROM courses WHERE id = 2"), 0);
  auto rows = students(0, 3);
  store.register_batch(1, ptrs(rows));
  EXPECT_EQ(count(rows, Outcome::registered), 1);
  EXPECT_EQ(count(rows, Outcome::course_full), 2);
  EXPECT_EQ(store.registered_count(1), 3);
}

// Issue 9, item 10: --dry-run's preview reads only.
TEST(Store, PreviewWritesNothing) {
  TempDir dir;
  std::string db = dir.file("r.db");
  std::int64_t id;
  {
    Store setup(db);
    id = setup.add_course("Intro", 2).id;
    auto first = students(0, 1);
    setup.register_batch(id, ptrs(first));
  }
  Store store(db, StoreOptions{false, 1000, true});
  auto rows = students(0, 3);
  store.preview_batch(id, ptrs(rows));
  EXPECT_EQ(rows[0].outcome, Outcome::already_registered);
  EXPECT_EQ(rows[1].outcome, Outcome::registered);
  EXPECT_EQ(rows[2].outcome, Outcome::course_full);
  EXPECT_EQ(testing::sql_int(db, "SELECT count(*) FROM registrations"), 1);
  EXPECT_EQ(testing::sql_int(db, "SELECT count(*) FROM students"), 1);
  EXPECT_THROW(store.add_course("X", 1), StoreError);  // query_only
}

}  // namespace
}  // namespace registrar
