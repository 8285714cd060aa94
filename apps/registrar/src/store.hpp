// registrar store: the SQLite database (WAL, synchronous=NORMAL, prepared statements).
//
// Schema:
//   courses(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,
//           capacity INTEGER NOT NULL CHECK(capacity>=0),
//           taken INTEGER NOT NULL CHECK(taken >= 0 AND taken <= capacity))
//   (schema version 2; a version-1 database is upgraded when opened read-write: the taken
//   column is added and filled from the registrations)
//   students(student_id TEXT PRIMARY KEY, name, email)
//   registrations(course_id, student_id, registered_at, PRIMARY KEY(course_id, student_id))
//
// A Store is one connection. It is not thread-safe, but it may be used from different
// threads one after another (goro::blocking runs each call on some helper thread).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "roster.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace registrar {

// Any database failure; what() is a complete sentence for the user.
struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Another connection held the write lock for longer than the busy timeout.
struct DbLocked : StoreError {
  using StoreError::StoreError;
};

// A prepared statement, finalized when it goes. Move-only.
class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* s) : s_(s) {}
  ~Statement();
  Statement(Statement&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  explicit operator bool() const { return s_ != nullptr; }
  sqlite3_stmt* get() const { return s_; }

  // Parameters count from 1. Text is bound without a copy: it must outlive the step.
  void bind(int i, std::int64_t v);
  void bind(int i, const std::string& v);
  int step();  // the SQLite result code (SQLITE_ROW, SQLITE_DONE, an error)
  // Columns count from 0.
  std::int64_t int64(int col) const;
  std::string text(int col) const;
  // Resets without clearing the bindings (every use binds all of a statement's parameters first,
  // and clearing costs a call per row).
  void reset();

  // Resets the statement when the scope ends, however it ends (statements kept for reuse).
  class Use {
   public:
    explicit Use(Statement& s) : s_(s) {}
    ~Use() { s_.reset(); }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

   private:
    Statement& s_;
  };

 private:
  sqlite3_stmt* s_ = nullptr;
};

struct Course {
  std::int64_t id = 0;
  std::string name;
  std::int64_t capacity = 0;
  std::int64_t registered = 0;  // seats taken
};

struct Registration {
  std::string student_id;
  std::string name;
  std::string email;
  std::string registered_at;  // ISO 8601 UTC
};

struct StoreOptions {
  bool create = true;          // create the file if missing (else: error)
  int busy_timeout_ms = 3000;  // wait this long for another writer, then DbLocked
  bool read_only = false;      // PRAGMA query_only; no schema creation or upgrade
};

class Store {
 public:
  Store(const std::string& path, StoreOptions options = {});
  ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }

  // Throws StoreError "course 'NAME' already exists" on a duplicate name.
  Course add_course(const std::string& name, std::int64_t capacity);
  std::optional<Course> find_course(const std::string& name);
  std::vector<Course> courses();
  std::vector<Registration> registrations(std::int64_t course_id);
  // Streams the registrations of a course (in registration order), one row at a time.
  void for_each_registration(std::int64_t course_id,
                             const std::function<void(const Registration&)>& f);
  std::int64_t registered_count(std::int64_t course_id);

  // One BEGIN IMMEDIATE transaction: upserts each row's student, then registers it unless it
  // is already registered (already_registered) or the course is at capacity (course_full).
  // Capacity is read inside the transaction, so concurrent processes cannot exceed it.
  // Rows must be valid and their student ids distinct. Sets each row's outcome. On failure
  // the transaction is rolled back, no outcome is set and StoreError/DbLocked is thrown.
  void register_batch(std::int64_t course_id, std::span<RosterRow* const> rows);
  // What register_batch would do, without writing (--dry-run): already_registered, course_full
  // or registered (detail "dry run: ..."); seats are counted across calls on this Store.
  void preview_batch(std::int64_t course_id, std::span<RosterRow* const> rows);

  // Changes a course's capacity; not below its registrations (StoreError).
  void set_capacity(const std::string& name, std::int64_t capacity);
  // Deletes a course; one with registrations only when `force` (they are deleted too).
  // Returns the number of registrations deleted.
  std::int64_t remove_course(const std::string& name, bool force);
  // Unregisters students from a course in one transaction; result[i]: ids[i] was registered.
  std::vector<bool> unregister(std::int64_t course_id, std::span<const std::string> ids);

 private:
  struct Close {
    void operator()(sqlite3* db) const;
  };
  [[noreturn]] void fail(int rc, const std::string& what) const;
  void exec(const char* sql, const char* what);
  // A one-off statement; `what` starts the error message.
  Statement prepare(const char* sql, const char* what);
  // A statement kept for reuse, prepared on first use into `slot`.
  Statement& cached(Statement& slot, const char* sql);
  void init_schema();
  void apply_outcomes(std::span<RosterRow* const> rows, std::int64_t capacity);

  std::string path_;
  StoreOptions options_;
  std::unique_ptr<sqlite3, Close> db_;  // declared before the statements: closed after them

  Statement course_capacity_;
  Statement add_taken_;
  Statement count_;
  Statement upsert_student_;
  Statement insert_registration_;
  Statement is_registered_;
  std::vector<Outcome> outcomes_;              // scratch for one batch
  std::optional<std::int64_t> preview_taken_;  // --dry-run: seats taken so far
};

}  // namespace registrar
