// registrar store: SQLite access. Every statement is prepared once and reused.
#include "store.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace registrar {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS courses(
  id INTEGER PRIMARY KEY,
  name TEXT UNIQUE NOT NULL,
  capacity INTEGER NOT NULL CHECK(capacity >= 0),
  taken INTEGER NOT NULL DEFAULT 0 CHECK(taken >= 0 AND taken <= capacity));
CREATE TABLE IF NOT EXISTS students(
  student_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS registrations(
  course_id INTEGER NOT NULL REFERENCES courses(id),
  student_id TEXT NOT NULL REFERENCES students(student_id),
  registered_at TEXT NOT NULL,
  PRIMARY KEY(course_id, student_id)) WITHOUT ROWID;
PRAGMA user_version = 2;
)sql";

// Version 1 counted a course's registrations with count(*); version 2 keeps the count in
// courses.taken, updated in the registering transaction.
constexpr const char* kMigrate1To2 = R"sql(
ALTER TABLE courses ADD COLUMN
  taken INTEGER NOT NULL DEFAULT 0 CHECK(taken >= 0 AND taken <= capacity);
UPDATE courses SET taken = (SELECT count(*) FROM registrations r WHERE r.course_id = courses.id);
PRAGMA user_version = 2;
)sql";
constexpr int kSchemaVersion = 2;

constexpr const char* kUpsertStudent =
    "INSERT INTO students(student_id, name, email) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(student_id) DO UPDATE SET name = excluded.name, email = excluded.email "
    "WHERE name IS NOT excluded.name OR email IS NOT excluded.email";
constexpr const char* kInsertRegistration =
    "INSERT OR IGNORE INTO registrations(course_id, student_id, registered_at) "
    "VALUES(?1, ?2, ?3)";
constexpr const char* kIsRegistered =
    "SELECT 1 FROM registrations WHERE course_id = ?1 AND student_id = ?2";
constexpr const char* kAddTaken = "UPDATE courses SET taken = taken + ?1 WHERE id = ?2";

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string now_iso8601() {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

std::string column_text(sqlite3_stmt* s, int col) {
  const unsigned char* text = sqlite3_column_text(s, col);
  return text ? std::string(reinterpret_cast<const char*>(text),
                            static_cast<std::size_t>(sqlite3_column_bytes(s, col)))
              : std::string();
}

void bind_text(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

}  // namespace

// Resets a statement when the scope ends, however it ends. (Bindings are not cleared: every
// use binds all of a statement's parameters first, and clearing costs a call per row.)
struct Store::Stmt {
  sqlite3_stmt* s;
  bool owned;  // finalize instead of reset (one-off statements)
  ~Stmt() {
    if (owned) {
      sqlite3_finalize(s);
    } else {
      sqlite3_reset(s);
    }
  }
};

Store::Store(const std::string& path, StoreOptions options) : path_(path), options_(options) {
  // No memory statistics: they take a global mutex on every allocation. Only possible before
  // SQLite initialises; later calls fail harmlessly (SQLITE_MISUSE).
  static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)memstatus_off;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (options_.create && !options_.read_only) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    if ((!options_.create || options_.read_only) && !file_exists(path))
      throw StoreError("database '" + path +
                       "' does not exist (create a course first: registrar course add NAME "
                       "--capacity N)");
    throw StoreError("cannot open database '" + path + "': " + msg);
  }
  try {
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, options_.busy_timeout_ms);
    if (options_.read_only) {
      exec("PRAGMA query_only = 1", "cannot open database");
    } else {
      exec("PRAGMA journal_mode = WAL", "cannot open database");
      exec("PRAGMA synchronous = NORMAL", "cannot open database");
      init_schema();
    }
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Store::~Store() {
  for (sqlite3_stmt* s : {course_capacity_, add_taken_, count_, upsert_student_,
                          insert_registration_, is_registered_})
    sqlite3_finalize(s);
  sqlite3_close(db_);
}

void Store::fail(int rc, const std::string& what) const {
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    throw DbLocked("database '" + path_ + "' is locked by another writer (gave up after " +
                   std::to_string(options_.busy_timeout_ms) + " ms)");
  throw StoreError(what + " '" + path_ + "': " + sqlite3_errmsg(db_));
}

void Store::exec(const char* sql, const char* what) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail(rc, what);
}

sqlite3_stmt* Store::prepare(sqlite3_stmt*& slot, const char* sql) {
  if (!slot) {
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot, nullptr);
    if (rc != SQLITE_OK) fail(rc, "cannot prepare a statement on database");
  }
  return slot;
}

void Store::init_schema() {
  auto user_version = [&] {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &s, nullptr);
    if (rc != SQLITE_OK) fail(rc, "cannot read database");
    Stmt guard{s, true};
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) fail(rc, "cannot read database");
    return sqlite3_column_int(s, 0);
  };
  if (user_version() == kSchemaVersion) return;
  exec("BEGIN IMMEDIATE", "cannot initialise database");
  try {
    int v = user_version();
    if (v == 0) exec(kSchema, "cannot initialise database");
    if (v == 1) exec(kMigrate1To2, "cannot upgrade database");
    if (v > kSchemaVersion)
      throw StoreError("database '" + path_ + "' has schema version " + std::to_string(v) +
                       ", newer than this registrar understands (" +
                       std::to_string(kSchemaVersion) + ")");
    exec("COMMIT", "cannot initialise database");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

Course Store::add_course(const std::string& name, std::int64_t capacity) {
  if (capacity < 0) throw StoreError("capacity must be >= 0");
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_, "INSERT INTO courses(name, capacity) VALUES(?1, ?2)", -1, &s,
                              nullptr);
  if (rc != SQLITE_OK) fail(rc, "cannot add a course to database");
  Stmt guard{s, true};
  bind_text(s, 1, name);
  sqlite3_bind_int64(s, 2, capacity);
  rc = sqlite3_step(s);
  if (rc == SQLITE_CONSTRAINT_UNIQUE) throw StoreError("course '" + name + "' already exists");
  if (rc != SQLITE_DONE) fail(rc, "cannot add a course to database");
  return Course{sqlite3_last_insert_rowid(db_), name, capacity, 0};
}

std::optional<Course> Store::find_course(const std::string& name) {
  for (Course& c : courses())
    if (c.name == name) return std::move(c);
  return std::nullopt;
}

std::vector<Course> Store::courses() {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_,
                              options_.read_only
                                  ? "SELECT c.id, c.name, c.capacity, (SELECT count(*) FROM "
                                    "registrations r WHERE r.course_id = c.id) FROM courses c "
                                    "ORDER BY c.name"
                                  : "SELECT id, name, capacity, taken FROM courses ORDER BY name",
                              -1, &s, nullptr);
  if (rc != SQLITE_OK) fail(rc, "cannot read database");
  Stmt guard{s, true};
  std::vector<Course> out;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW)
    out.push_back(Course{sqlite3_column_int64(s, 0), column_text(s, 1), sqlite3_column_int64(s, 2),
                         sqlite3_column_int64(s, 3)});
  if (rc != SQLITE_DONE) fail(rc, "cannot read database");
  return out;
}

std::vector<Registration> Store::registrations(std::int64_t course_id) {
  std::vector<Registration> out;
  for_each_registration(course_id, [&](const Registration& r) { out.push_back(r); });
  return out;
}

void Store::for_each_registration(std::int64_t course_id,
                                  const std::function<void(const Registration&)>& f) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_,
                              "SELECT r.student_id, s.name, s.email, r.registered_at "
                              "FROM registrations r JOIN students s USING (student_id) "
                              "WHERE r.course_id = ?1 ORDER BY r.registered_at, r.student_id",
                              -1, &s, nullptr);
  if (rc != SQLITE_OK) fail(rc, "cannot read database");
  Stmt guard{s, true};
  sqlite3_bind_int64(s, 1, course_id);
  Registration reg;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    reg.student_id = column_text(s, 0);
    reg.name = column_text(s, 1);
    reg.email = column_text(s, 2);
    reg.registered_at = column_text(s, 3);
    f(reg);
  }
  if (rc != SQLITE_DONE) fail(rc, "cannot read database");
}

std::int64_t Store::registered_count(std::int64_t course_id) {
  sqlite3_stmt* s = prepare(count_, "SELECT count(*) FROM registrations WHERE course_id = ?1");
  Stmt guard{s, false};
  sqlite3_bind_int64(s, 1, course_id);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) fail(rc, "cannot read database");
  return sqlite3_column_int64(s, 0);
}

void Store::register_batch(std::int64_t course_id, std::span<RosterRow* const> rows) {
  const std::string now = now_iso8601();
  outcomes_.assign(rows.size(), Outcome::pending);
  std::int64_t capacity = 0, taken = 0, added = 0;
  exec("BEGIN IMMEDIATE", "cannot write to database");
  try {
    {
      sqlite3_stmt* s =
          prepare(course_capacity_, "SELECT capacity, taken FROM courses WHERE id = ?1");
      Stmt guard{s, false};
      sqlite3_bind_int64(s, 1, course_id);
      int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE)
        throw StoreError("course " + std::to_string(course_id) + " vanished from '" + path_ + "'");
      if (rc != SQLITE_ROW) fail(rc, "cannot read database");
      capacity = sqlite3_column_int64(s, 0);
      taken = sqlite3_column_int64(s, 1);
    }
    sqlite3_stmt* upsert = prepare(upsert_student_, kUpsertStudent);
    sqlite3_stmt* insert = prepare(insert_registration_, kInsertRegistration);
    sqlite3_stmt* exists = prepare(is_registered_, kIsRegistered);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const RosterRow& row = *rows[i];
      {
        Stmt guard{upsert, false};
        bind_text(upsert, 1, row.student_id);
        bind_text(upsert, 2, row.name);
        bind_text(upsert, 3, row.email);
        int rc = sqlite3_step(upsert);
        if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
      }
      if (taken + added < capacity) {
        Stmt guard{insert, false};
        sqlite3_bind_int64(insert, 1, course_id);
        bind_text(insert, 2, row.student_id);
        bind_text(insert, 3, now);
        int rc = sqlite3_step(insert);
        if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
        if (sqlite3_changes(db_) == 1) {
          outcomes_[i] = Outcome::registered;
          ++added;
        } else {
          outcomes_[i] = Outcome::already_registered;
        }
      } else {
        Stmt guard{exists, false};
        sqlite3_bind_int64(exists, 1, course_id);
        bind_text(exists, 2, row.student_id);
        int rc = sqlite3_step(exists);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(rc, "cannot read database");
        outcomes_[i] = rc == SQLITE_ROW ? Outcome::already_registered : Outcome::course_full;
      }
    }
    if (added > 0) {
      sqlite3_stmt* s = prepare(add_taken_, kAddTaken);
      Stmt guard{s, false};
      sqlite3_bind_int64(s, 1, added);
      sqlite3_bind_int64(s, 2, course_id);
      int rc = sqlite3_step(s);
      if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
    }
    exec("COMMIT", "cannot commit to database");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  apply_outcomes(rows, capacity);
}

void Store::apply_outcomes(std::span<RosterRow* const> rows, std::int64_t capacity) {
  for (std::size_t i = 0; i < rows.size(); ++i) {
    rows[i]->outcome = outcomes_[i];
    if (outcomes_[i] == Outcome::course_full)
      rows[i]->detail = "course is at its capacity of " + std::to_string(capacity);
    else
      rows[i]->detail.clear();
  }
}

void Store::preview_batch(std::int64_t course_id, std::span<RosterRow* const> rows) {
  outcomes_.assign(rows.size(), Outcome::pending);
  std::int64_t capacity = 0;
  exec("BEGIN", "cannot read database");
  try {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, "SELECT capacity FROM courses WHERE id = ?1", -1, &s, nullptr);
    if (rc != SQLITE_OK) fail(rc, "cannot read database");
    {
      Stmt guard{s, true};
      sqlite3_bind_int64(s, 1, course_id);
      rc = sqlite3_step(s);
      if (rc != SQLITE_ROW) fail(rc, "cannot read database");
      capacity = sqlite3_column_int64(s, 0);
    }
    if (!preview_taken_) preview_taken_ = registered_count(course_id);
    sqlite3_stmt* exists = prepare(is_registered_, kIsRegistered);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      Stmt guard{exists, false};
      sqlite3_bind_int64(exists, 1, course_id);
      bind_text(exists, 2, rows[i]->student_id);
      rc = sqlite3_step(exists);
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(rc, "cannot read database");
      if (rc == SQLITE_ROW) {
        outcomes_[i] = Outcome::already_registered;
      } else if (*preview_taken_ < capacity) {
        outcomes_[i] = Outcome::registered;
        ++*preview_taken_;
      } else {
        outcomes_[i] = Outcome::course_full;
      }
    }
    exec("COMMIT", "cannot read database");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  apply_outcomes(rows, capacity);
  for (RosterRow* row : rows)
    if (row->outcome == Outcome::registered) row->detail = "dry run: would be registered";
}

void Store::set_capacity(const std::string& name, std::int64_t capacity) {
  if (capacity < 0) throw StoreError("capacity must be >= 0");
  exec("BEGIN IMMEDIATE", "cannot write to database");
  try {
    auto course = find_course(name);
    if (!course) throw StoreError("unknown course '" + name + "' in '" + path_ + "'");
    if (course->registered > capacity)
      throw StoreError("course '" + name + "' has " + std::to_string(course->registered) +
                       " registrations: its capacity cannot go below that");
    sqlite3_stmt* s = nullptr;
    int rc =
        sqlite3_prepare_v2(db_, "UPDATE courses SET capacity = ?1 WHERE id = ?2", -1, &s, nullptr);
    if (rc != SQLITE_OK) fail(rc, "cannot write to database");
    Stmt guard{s, true};
    sqlite3_bind_int64(s, 1, capacity);
    sqlite3_bind_int64(s, 2, course->id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
    exec("COMMIT", "cannot commit to database");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::int64_t Store::remove_course(const std::string& name, bool force) {
  std::int64_t removed = 0;
  exec("BEGIN IMMEDIATE", "cannot write to database");
  try {
    auto course = find_course(name);
    if (!course) throw StoreError("unknown course '" + name + "' in '" + path_ + "'");
    if (course->registered > 0 && !force)
      throw StoreError("course '" + name + "' has " + std::to_string(course->registered) +
                       " registrations (remove it with them: course remove --force)");
    for (const char* sql :
         {"DELETE FROM registrations WHERE course_id = ?1", "DELETE FROM courses WHERE id = ?1"}) {
      sqlite3_stmt* s = nullptr;
      int rc = sqlite3_prepare_v2(db_, sql, -1, &s, nullptr);
      if (rc != SQLITE_OK) fail(rc, "cannot write to database");
      Stmt guard{s, true};
      sqlite3_bind_int64(s, 1, course->id);
      rc = sqlite3_step(s);
      if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
      if (removed == 0) removed = sqlite3_changes(db_);
    }
    exec("COMMIT", "cannot commit to database");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return removed;
}

std::vector<bool> Store::unregister(std::int64_t course_id, std::span<const std::string> ids) {
  std::vector<bool> removed(ids.size(), false);
  std::int64_t n = 0;
  exec("BEGIN IMMEDIATE", "cannot write to database");
  try {
    sqlite3_stmt* del = nullptr;
    int rc = sqlite3_prepare_v2(
        db_, "DELETE FROM registrations WHERE course_id = ?1 AND student_id = ?2", -1, &del,
        nullptr);
    if (rc != SQLITE_OK) fail(rc, "cannot write to database");
    Stmt del_guard{del, true};
    for (std::size_t i = 0; i < ids.size(); ++i) {
      sqlite3_reset(del);
      sqlite3_bind_int64(del, 1, course_id);
      bind_text(del, 2, ids[i]);
      rc = sqlite3_step(del);
      if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
      removed[i] = sqlite3_changes(db_) == 1;
      n += removed[i];
    }
    sqlite3_stmt* s = prepare(add_taken_, kAddTaken);
    Stmt guard{s, false};
    sqlite3_bind_int64(s, 1, -n);
    sqlite3_bind_int64(s, 2, course_id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
    exec("COMMIT", "cannot commit to database");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return removed;
}

}  // namespace registrar
