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

}  // namespace

Statement::~Statement() { sqlite3_finalize(s_); }

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(s_);
    s_ = std::exchange(other.s_, nullptr);
  }
  return *this;
}

void Statement::bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }

void Statement::bind(int i, const std::string& v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

int Statement::step() { return sqlite3_step(s_); }

std::int64_t Statement::int64(int col) const { return sqlite3_column_int64(s_, col); }

std::string Statement::text(int col) const {
  const unsigned char* text = sqlite3_column_text(s_, col);
  return text ? std::string(reinterpret_cast<const char*>(text),
                            static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
              : std::string();
}

void Statement::reset() { sqlite3_reset(s_); }

void Store::Close::operator()(sqlite3* db) const { sqlite3_close(db); }

Store::Store(const std::string& path, StoreOptions options) : path_(path), options_(options) {
  // No memory statistics: they take a global mutex on every allocation. Only possible before
  // SQLite initialises; later calls fail harmlessly (SQLITE_MISUSE).
  static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)memstatus_off;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (options_.create && !options_.read_only) flags |= SQLITE_OPEN_CREATE;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  db_.reset(db);  // closed on every failure below
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    db_.reset();
    if ((!options_.create || options_.read_only) && !file_exists(path))
      throw StoreError("database '" + path +
                       "' does not exist (create a course first: registrar course add NAME "
                       "--capacity N)");
    throw StoreError("cannot open database '" + path + "': " + msg);
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options_.busy_timeout_ms);
  if (options_.read_only) {
    exec("PRAGMA query_only = 1", "cannot open database");
  } else {
    exec("PRAGMA journal_mode = WAL", "cannot open database");
    exec("PRAGMA synchronous = NORMAL", "cannot open database");
    init_schema();
  }
}

void Store::fail(int rc, const std::string& what) const {
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    throw DbLocked("database '" + path_ + "' is locked by another writer (gave up after " +
                   std::to_string(options_.busy_timeout_ms) + " ms)");
  throw StoreError(what + " '" + path_ + "': " + sqlite3_errmsg(db_.get()));
}

void Store::exec(const char* sql, const char* what) {
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail(rc, what);
}

Statement Store::prepare(const char* sql, const char* what) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql, -1, &s, nullptr);
  Statement stmt(s);
  if (rc != SQLITE_OK) fail(rc, what);
  return stmt;
}

Statement& Store::cached(Statement& slot, const char* sql) {
  if (!slot) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    slot = Statement(s);
    if (rc != SQLITE_OK) fail(rc, "cannot prepare a statement on database");
  }
  return slot;
}

void Store::init_schema() {
  auto user_version = [&] {
    Statement s = prepare("PRAGMA user_version", "cannot read database");
    int rc = s.step();
    if (rc != SQLITE_ROW) fail(rc, "cannot read database");
    return static_cast<int>(s.int64(0));
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
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

Course Store::add_course(const std::string& name, std::int64_t capacity) {
  if (capacity < 0) throw StoreError("capacity must be >= 0");
  Statement s = prepare("INSERT INTO courses(name, capacity) VALUES(?1, ?2)",
                        "cannot add a course to database");
  s.bind(1, name);
  s.bind(2, capacity);
  int rc = s.step();
  if (rc == SQLITE_CONSTRAINT_UNIQUE) throw StoreError("course '" + name + "' already exists");
  if (rc != SQLITE_DONE) fail(rc, "cannot add a course to database");
  return Course{sqlite3_last_insert_rowid(db_.get()), name, capacity, 0};
}

std::optional<Course> Store::find_course(const std::string& name) {
  for (Course& c : courses())
    if (c.name == name) return std::move(c);
  return std::nullopt;
}

std::vector<Course> Store::courses() {
  Statement s =
      prepare(options_.read_only ? "SELECT c.id, c.name, c.capacity, (SELECT count(*) FROM "
                                   "registrations r WHERE r.course_id = c.id) FROM courses c "
                                   "ORDER BY c.name"
                                 : "SELECT id, name, capacity, taken FROM courses ORDER BY name",
              "cannot read database");
  std::vector<Course> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back(Course{s.int64(0), s.text(1), s.int64(2), s.int64(3)});
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
  Statement s = prepare(
      "SELECT r.student_id, s.name, s.email, r.registered_at "
      "FROM registrations r JOIN students s USING (student_id) "
      "WHERE r.course_id = ?1 ORDER BY r.registered_at, r.student_id",
      "cannot read database");
  s.bind(1, course_id);
  Registration reg;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    reg.student_id = s.text(0);
    reg.name = s.text(1);
    reg.email = s.text(2);
    reg.registered_at = s.text(3);
    f(reg);
  }
  if (rc != SQLITE_DONE) fail(rc, "cannot read database");
}

std::int64_t Store::registered_count(std::int64_t course_id) {
  Statement& s = cached(count_, "SELECT count(*) FROM registrations WHERE course_id = ?1");
  Statement::Use use(s);
  s.bind(1, course_id);
  int rc = s.step();
  if (rc != SQLITE_ROW) fail(rc, "cannot read database");
  return s.int64(0);
}

void Store::register_batch(std::int64_t course_id, std::span<RosterRow* const> rows) {
  const std::string now = now_iso8601();
  outcomes_.assign(rows.size(), Outcome::pending);
  std::int64_t capacity = 0, taken = 0, added = 0;
  exec("BEGIN IMMEDIATE", "cannot write to database");
  try {
    {
      Statement& s = cached(course_capacity_, "SELECT capacity, taken FROM courses WHERE id = ?1");
      Statement::Use use(s);
      s.bind(1, course_id);
      int rc = s.step();
      if (rc == SQLITE_DONE)
        throw StoreError("course " + std::to_string(course_id) + " vanished from '" + path_ + "'");
      if (rc != SQLITE_ROW) fail(rc, "cannot read database");
      capacity = s.int64(0);
      taken = s.int64(1);
    }
    Statement& upsert = cached(upsert_student_, kUpsertStudent);
    Statement& insert = cached(insert_registration_, kInsertRegistration);
    Statement& exists = cached(is_registered_, kIsRegistered);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const RosterRow& row = *rows[i];
      {
        Statement::Use use(upsert);
        upsert.bind(1, row.student_id);
        upsert.bind(2, row.name);
        upsert.bind(3, row.email);
        int rc = upsert.step();
        if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
      }
      if (taken + added < capacity) {
        Statement::Use use(insert);
        insert.bind(1, course_id);
        insert.bind(2, row.student_id);
        insert.bind(3, now);
        int rc = insert.step();
        if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
        if (sqlite3_changes(db_.get()) == 1) {
          outcomes_[i] = Outcome::registered;
          ++added;
        } else {
          outcomes_[i] = Outcome::already_registered;
        }
      } else {
        Statement::Use use(exists);
        exists.bind(1, course_id);
        exists.bind(2, row.student_id);
        int rc = exists.step();
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(rc, "cannot read database");
        outcomes_[i] = rc == SQLITE_ROW ? Outcome::already_registered : Outcome::course_full;
      }
    }
    if (added > 0) {
      Statement& s = cached(add_taken_, kAddTaken);
      Statement::Use use(s);
      s.bind(1, added);
      s.bind(2, course_id);
      int rc = s.step();
      if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
    }
    exec("COMMIT", "cannot commit to database");
  } catch (...) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
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
    {
      Statement s = prepare("SELECT capacity FROM courses WHERE id = ?1", "cannot read database");
      s.bind(1, course_id);
      int rc = s.step();
      if (rc != SQLITE_ROW) fail(rc, "cannot read database");
      capacity = s.int64(0);
    }
    if (!preview_taken_) preview_taken_ = registered_count(course_id);
    Statement& exists = cached(is_registered_, kIsRegistered);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      Statement::Use use(exists);
      exists.bind(1, course_id);
      exists.bind(2, rows[i]->student_id);
      int rc = exists.step();
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
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
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
    Statement s =
        prepare("UPDATE courses SET capacity = ?1 WHERE id = ?2", "cannot write to database");
    s.bind(1, capacity);
    s.bind(2, course->id);
    int rc = s.step();
    if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
    exec("COMMIT", "cannot commit to database");
  } catch (...) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
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
      Statement s = prepare(sql, "cannot write to database");
      s.bind(1, course->id);
      int rc = s.step();
      if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
      if (removed == 0) removed = sqlite3_changes(db_.get());
    }
    exec("COMMIT", "cannot commit to database");
  } catch (...) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return removed;
}

std::vector<bool> Store::unregister(std::int64_t course_id, std::span<const std::string> ids) {
  std::vector<bool> removed(ids.size(), false);
  std::int64_t n = 0;
  exec("BEGIN IMMEDIATE", "cannot write to database");
  try {
    Statement del = prepare("DELETE FROM registrations WHERE course_id = ?1 AND student_id = ?2",
                            "cannot write to database");
    for (std::size_t i = 0; i < ids.size(); ++i) {
      Statement::Use use(del);
      del.bind(1, course_id);
      del.bind(2, ids[i]);
      int rc = del.step();
      if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
      removed[i] = sqlite3_changes(db_.get()) == 1;
      n += removed[i];
    }
    Statement& s = cached(add_taken_, kAddTaken);
    Statement::Use use(s);
    s.bind(1, -n);
    s.bind(2, course_id);
    int rc = s.step();
    if (rc != SQLITE_DONE) fail(rc, "cannot write to database");
    exec("COMMIT", "cannot commit to database");
  } catch (...) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return removed;
}

}  // namespace registrar
