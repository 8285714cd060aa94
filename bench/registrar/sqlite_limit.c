/* sqlite_limit: how fast can SQLite alone absorb a roster with registrar's schema and
 * transactions? The yardstick for registrar's writer (bench/registrar/ratio.sh).
 *
 *   sqlite_limit ROSTER.csv DB [TXN_ROWS]
 *
 * Loads the roster (student_id,name,email as written by `registrar gen-roster`: quoted
 * fields, no embedded newlines) into memory first, then registers every row into a fresh
 * database exactly as registrar's Store::register_batch does: WAL, synchronous=NORMAL, one
 * BEGIN IMMEDIATE transaction per TXN_ROWS rows (default 1000) reading the course's
 * capacity and taken counter, upserting the student, inserting the registration, and
 * updating the counter; statements prepared once. Prints the rows per second of the
 * transactions alone (no parsing, no validation, no output): the limit. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct row {
  char *id, *name, *email;
  int id_len, name_len, email_len;
};

static void die(sqlite3 *db, const char *what) {
  fprintf(stderr, "sqlite_limit: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
  exit(1);
}

static void exec(sqlite3 *db, const char *sql) {
  if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) die(db, sql);
}

/* One CSV field starting at *p (quotes and "" handled); advances *p past the separator. */
static char *field(char **p, int *len) {
  char *s = *p, *out = s, *w;
  if (*s == '"') {
    w = out = ++s;
    for (;;) {
      if (*s == '"' && s[1] == '"') {
        *w++ = '"';
        s += 2;
      } else if (*s == '"') {
        ++s;
        break;
      } else if (*s == '\0') {
        break;
      } else {
        *w++ = *s++;
      }
    }
    *len = (int)(w - out);
  } else {
    while (*s != ',' && *s != '\n' && *s != '\r' && *s != '\0') ++s;
    *len = (int)(s - out);
  }
  if (*s == ',') ++s;
  *p = s;
  return out;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: sqlite_limit ROSTER.csv DB [TXN_ROWS]\n");
    return 2;
  }
  long txn_rows = argc > 3 ? atol(argv[3]) : 1000;
  if (txn_rows < 1) txn_rows = 1;

  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  size_t cap = 1 << 16, n = 0;
  struct row *rows = malloc(cap * sizeof *rows);
  char line[4096];
  int header = 1;
  while (fgets(line, sizeof line, f)) {
    if (header) { /* gen-roster writes student_id,name,email */
      header = 0;
      continue;
    }
    if (line[0] == '\n' || line[0] == '\r') continue;
    char *copy = strdup(line), *p = copy;
    if (n == cap) rows = realloc(rows, (cap *= 2) * sizeof *rows);
    rows[n].id = field(&p, &rows[n].id_len);
    rows[n].name = field(&p, &rows[n].name_len);
    rows[n].email = field(&p, &rows[n].email_len);
    ++n;
  }
  fclose(f);

  remove(argv[2]);
  /* The connection set up as registrar's Store does: no memory statistics (a global mutex
   * per allocation), no connection mutex. */
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(argv[2], &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK)
    die(db, "open");
  exec(db, "PRAGMA journal_mode = WAL");
  exec(db, "PRAGMA synchronous = NORMAL");
  exec(db,
       "CREATE TABLE courses(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
       "  capacity INTEGER NOT NULL CHECK(capacity >= 0),"
       "  taken INTEGER NOT NULL DEFAULT 0 CHECK(taken >= 0 AND taken <= capacity));"
       "CREATE TABLE students(student_id TEXT PRIMARY KEY, name TEXT NOT NULL,"
       "  email TEXT NOT NULL) WITHOUT ROWID;"
       "CREATE TABLE registrations(course_id INTEGER NOT NULL REFERENCES courses(id),"
       "  student_id TEXT NOT NULL REFERENCES students(student_id),"
       "  registered_at TEXT NOT NULL, PRIMARY KEY(course_id, student_id)) WITHOUT ROWID;"
       "INSERT INTO courses(id, name, capacity) VALUES(1, 'Bench', 100000000);");

  sqlite3_stmt *course, *upsert, *insert, *taken;
  if (sqlite3_prepare_v3(db, "SELECT capacity, taken FROM courses WHERE id = ?1", -1,
                         SQLITE_PREPARE_PERSISTENT, &course, NULL) ||
      sqlite3_prepare_v3(db,
                         "INSERT INTO students(student_id, name, email) VALUES(?1, ?2, ?3) "
                         "ON CONFLICT(student_id) DO UPDATE SET name = excluded.name, "
                         "email = excluded.email "
                         "WHERE name IS NOT excluded.name OR email IS NOT excluded.email",
                         -1, SQLITE_PREPARE_PERSISTENT, &upsert, NULL) ||
      sqlite3_prepare_v3(db,
                         "INSERT OR IGNORE INTO registrations(course_id, student_id, "
                         "registered_at) VALUES(?1, ?2, ?3)",
                         -1, SQLITE_PREPARE_PERSISTENT, &insert, NULL) ||
      sqlite3_prepare_v3(db, "UPDATE courses SET taken = taken + ?1 WHERE id = ?2", -1,
                         SQLITE_PREPARE_PERSISTENT, &taken, NULL))
    die(db, "prepare");

  const char *stamp = "2026-01-01T00:00:00.000Z";
  double start = now();
  size_t registered = 0;
  for (size_t first = 0; first < n; first += (size_t)txn_rows) {
    size_t last = first + (size_t)txn_rows < n ? first + (size_t)txn_rows : n;
    long long capacity, used, added = 0;
    exec(db, "BEGIN IMMEDIATE");
    sqlite3_bind_int64(course, 1, 1);
    if (sqlite3_step(course) != SQLITE_ROW) die(db, "course");
    capacity = sqlite3_column_int64(course, 0);
    used = sqlite3_column_int64(course, 1);
    sqlite3_reset(course);
    for (size_t i = first; i < last; ++i) {
      sqlite3_bind_text(upsert, 1, rows[i].id, rows[i].id_len, SQLITE_STATIC);
      sqlite3_bind_text(upsert, 2, rows[i].name, rows[i].name_len, SQLITE_STATIC);
      sqlite3_bind_text(upsert, 3, rows[i].email, rows[i].email_len, SQLITE_STATIC);
      if (sqlite3_step(upsert) != SQLITE_DONE) die(db, "upsert");
      sqlite3_reset(upsert);
      if (used + added < capacity) {
        sqlite3_bind_int64(insert, 1, 1);
        sqlite3_bind_text(insert, 2, rows[i].id, rows[i].id_len, SQLITE_STATIC);
        sqlite3_bind_text(insert, 3, stamp, -1, SQLITE_STATIC);
        if (sqlite3_step(insert) != SQLITE_DONE) die(db, "insert");
        sqlite3_reset(insert);
        added += sqlite3_changes(db);
      }
    }
    sqlite3_bind_int64(taken, 1, added);
    sqlite3_bind_int64(taken, 2, 1);
    if (sqlite3_step(taken) != SQLITE_DONE) die(db, "taken");
    sqlite3_reset(taken);
    exec(db, "COMMIT");
    registered += (size_t)added;
  }
  double secs = now() - start;
  printf("sqlite_limit: %zu rows, %zu registered, %.3f s, %.0f rows/s\n", n, registered, secs,
         (double)n / secs);
  sqlite3_finalize(course);
  sqlite3_finalize(upsert);
  sqlite3_finalize(insert);
  sqlite3_finalize(taken);
  sqlite3_close(db);
  return 0;
}
