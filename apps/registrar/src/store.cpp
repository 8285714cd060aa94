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
  capacity INTEGER NOT NULL CHECK(capacity >= 0));
CREATE TABLE IF NOT EXISTS students(
  student_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS registrations(
  course_id INTEGER NOT NULL REFERENCES courses(id),
  student_id TEXT NOT NULL REFERENCES students(student_id),
  registered_at TEXT NOT NULL,
  PRIMARY KEY(course_id, student_id)) WITHOUT ROWID;
PRAGMA user_version = 1;
)sql";

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

// Resets a statement (and drops its bindings) when the scope ends, however it ends.
struct Store::Stmt {
  sqlite3_stmt* s;
  bool owned;  // finalize instead of reset (one-off statements)
  ~Stmt() {
    if (owned) {
      sqlite3_finalize(s);
    } else {
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
    }
  }
};

Store::Store(const std::string& path, StoreOptions options) : path_(path), options_(options) {
  // No memory statistics: they take a global mutex on every allocation. Only possible before
  // SQLite initialises; later calls fail harmlessly (SQLITE_MISUSE).
  static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)memstatus_off;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (options_.create) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    if (!options_.create && !file_exists(path))
      throw StoreError("database '" + path +
                       "' does not exist (create a course first: registrar course add NAME "
                       "--capacity N)");
    throw StoreError("cannot open database '" + path + "': " + msg);
  }
  try {
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, options_.busy_timeout_ms);
    exec("PRAGMA journal_mode = WAL", "cannot open database");
    exec("PRAGMA synchronous = NORMAL", "cannot open database");
    init_schema();
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Store::~Store() {
  for (sqlite3_stmt* s : {course_capacity_, data_version_, count_, upsert_student_,
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
  if (user_version() != 0) return;
  exec("BEGIN IMMEDIATE", "cannot initialise database");
  try {
    if (user_version() == 0) exec(kSchema, "cannot initialise database");
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
                              "SELECT c.id, c.name, c.capacity, (SELECT count(*) FROM "
                              "registrations r WHERE r.course_id = c.id) FROM courses c "
                              "ORDER BY c.name",
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
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_,
                              "SELECT r.student_id, s.name, s.email, r.registered_at "
                              "FROM registrations r JOIN students s USING (student_id) "
                              "WHERE r.course_id = ?1 ORDER BY r.registered_at, r.student_id",
                              -1, &s, nullptr);
  if (rc != SQLITE_OK) fail(rc, "cannot read database");
  Stmt guard{s, true};
  sqlite3_bind_int64(s, 1, course_id);
  std::vector<Registration> out;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW)
    out.push_back(
        Registration{column_text(s, 0), column_text(s, 1), column_text(s, 2), column_text(s, 3)});
  if (rc != SQLITE_DONE) fail(rc, "cannot read database");
  return out;
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
  std::vector<Outcome> outcomes(rows.size(), Outcome::pending);
  std::int64_t capacity = 0;
  exec("BEGIN IMMEDIATE", "cannot write to database");
  try {
    {
      sqlite3_stmt* s = prepare(course_capacity_, "SELECT capacity FROM courses WHERE id = ?1");
      Stmt guard{s, false};
      sqlite3_bind_int64(s, 1, course_id);
      int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE)
        throw StoreError("course " + std::to_string(course_id) + " vanished from '" + path_ + "'");
      if (rc != SQLITE_ROW) fail(rc, "cannot read database");
      capacity = sqlite3_column_int64(s, 0);
    }
    std::int64_t version;
    {
      sqlite3_stmt* s = prepare(data_version_, "PRAGMA data_version");
      Stmt guard{s, false};
      int rc = sqlite3_step(s);
      if (rc != SQLITE_ROW) fail(rc, "cannot read database");
      version = sqlite3_column_int64(s, 0);
    }
    std::int64_t count = count_cache_ && count_cache_->course_id == course_id &&
                                 count_cache_->data_version == version
                             ? count_cache_->count
                             : registered_count(course_id);

    sqlite3_stmt* upsert =
        prepare(upsert_student_,
                "INSERT INTO students(student_id, name, email) VALUES(?1, ?2, ?3) "
                "ON CONFLICT(student_id) DO UPDATE SET name = excluded.name, email = "
                "excluded.email WHERE name IS NOT excluded.name OR email IS NOT excluded.email");
    sqlite3_stmt* insert = prepare(insert_registration_,
                                   "INSERT OR IGNORE INTO registrations(course_id, student_id, "
                                   "registered_at) VALUES(?1, ?2, ?3)");
    sqlite3_stmt* exists = prepare(
        is_registered_, "SELECT 1 FROM registrations WHERE course_id = ?1 AND student_id = ?2");
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
      if (count < capacity) {
        Stmt guard{insert, false};
        sqlite3_bind_int64(insert, 1, course_id);
        bind_text(insert, 2, row.student_id);
        bind_text(insert, 3, now);
        int rc = sqlite3_step(insert);
        if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
        if (sqlite3_changes(db_) == 1) {
          outcomes[i] = Outcome::registered;
          ++count;
        } else {
          outcomes[i] = Outcome::already_registered;
        }
      } else {
        Stmt guard{exists, false};
        sqlite3_bind_int64(exists, 1, course_id);
        bind_text(exists, 2, row.student_id);
        int rc = sqlite3_step(exists);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(rc, "cannot read database");
        outcomes[i] = rc == SQLITE_ROW ? Outcome::already_registered : Outcome::course_full;
      }
    }
    exec("COMMIT", "cannot commit to database");
    count_cache_ = CountCache{course_id, version, count};
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    count_cache_.reset();
    throw;
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    rows[i]->outcome = outcomes[i];
    if (outcomes[i] == Outcome::course_full)
      rows[i]->detail = "course is at its capacity of " + std::to_string(capacity);
    else if (outcomes[i] == Outcome::already_registered)
      rows[i]->detail = "";
  }
}

}  // namespace registrar
