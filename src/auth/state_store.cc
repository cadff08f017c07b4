#include "auth/state_store.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>

#include "storage/durable_file.h"

namespace gm::auth {
namespace fs = std::filesystem;

namespace {

// Each step takes the schema from version i to i + 1; steps are never edited once
// released, only appended.
constexpr const char* kMigrations[] = {
    R"sql(
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sessions (
      id TEXT PRIMARY KEY, grp TEXT NOT NULL, subject TEXT NOT NULL, kind TEXT NOT NULL,
      created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER,
      origin TEXT NOT NULL, user_agent TEXT NOT NULL, address TEXT NOT NULL, device TEXT NOT NULL);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    CREATE INDEX sessions_by_device ON sessions (device);
    CREATE TABLE root_docs (grp TEXT PRIMARY KEY, url TEXT NOT NULL, set_at INTEGER NOT NULL);
    CREATE TABLE seen_jti (
      issuer TEXT NOT NULL, jti TEXT NOT NULL, keep_until INTEGER NOT NULL, PRIMARY KEY (issuer, jti));
    CREATE INDEX seen_jti_by_expiry ON seen_jti (keep_until);
    CREATE TABLE devices (
      code TEXT PRIMARY KEY, jkt TEXT NOT NULL, grp TEXT NOT NULL, status TEXT NOT NULL,
      origin TEXT NOT NULL, user_agent TEXT NOT NULL, address TEXT NOT NULL,
      created_at INTEGER NOT NULL, decided_at INTEGER, UNIQUE (jkt, grp));
    )sql",
    R"sql(
    CREATE TABLE grants (
      id TEXT PRIMARY KEY, subject TEXT NOT NULL, scopes TEXT NOT NULL, status TEXT NOT NULL,
      created_at INTEGER NOT NULL, expires_at INTEGER, decided_at INTEGER,
      origin TEXT NOT NULL, note TEXT NOT NULL);
    CREATE INDEX grants_by_subject ON grants (subject, status);
    )sql",
    R"sql(
    CREATE TABLE console_links (
      code_hash TEXT PRIMARY KEY, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
    )sql",
};

// One prepared statement; binds by position from 1, steps, reads columns.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(const std::string& v) {
    if (stmt_) sqlite3_bind_text(stmt_, ++bound_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int64_t v) {
    if (stmt_) sqlite3_bind_int64(stmt_, ++bound_, v);
    return *this;
  }
  Statement& bind(std::optional<int64_t> v) {
    if (!v) {
      if (stmt_) sqlite3_bind_null(stmt_, ++bound_);
      return *this;
    }
    return bind(*v);
  }
  // true: a row is ready; false: done. Errors carry SQLite's message.
  Result<bool> step() {
    if (!stmt_) return error("database: " + std::string(sqlite3_errmsg(db_)));
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return error("database: " + std::string(sqlite3_errmsg(db_)));
  }
  Status run() {
    GM_ASSIGN_OR_RETURN(bool row, step());
    (void)row;
    return Status::Ok();
  }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::optional<int64_t> maybe_integer(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return integer(col);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int bound_ = 0;
};

Status exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    return error("database: " + text);
  }
  return Status::Ok();
}

// BEGIN IMMEDIATE … COMMIT, rolled back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { began_ = exec(db, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (began_.ok() && !done_) (void)exec(db_, "ROLLBACK");
  }
  const Status& began() const { return began_; }
  Status commit() {
    done_ = true;
    return exec(db_, "COMMIT");
  }

 private:
  sqlite3* db_;
  Status began_;
  bool done_ = false;
};

const char* kSessionColumns =
    "id, grp, subject, kind, created_at, expires_at, revoked_at, origin, user_agent, address, device";

SessionRecord read_session(const Statement& s) {
  SessionRecord r;
  r.id = s.text(0);
  r.group = s.text(1);
  r.subject = s.text(2);
  r.kind = s.text(3);
  r.created_at = s.integer(4);
  r.expires_at = s.integer(5);
  r.revoked_at = s.maybe_integer(6);
  r.origin = s.text(7);
  r.user_agent = s.text(8);
  r.address = s.text(9);
  r.device = s.text(10);
  return r;
}

const char* kDeviceColumns = "code, jkt, grp, status, origin, user_agent, address, created_at, decided_at";

DeviceStatus parse_status(const std::string& s) {
  if (s == "approved") return DeviceStatus::approved;
  if (s == "revoked") return DeviceStatus::revoked;
  return DeviceStatus::pending;
}

DeviceRecord read_device(const Statement& s) {
  DeviceRecord d;
  d.code = s.text(0);
  d.jkt = s.text(1);
  d.group = s.text(2);
  d.status = parse_status(s.text(3));
  d.origin = s.text(4);
  d.user_agent = s.text(5);
  d.address = s.text(6);
  d.created_at = s.integer(7);
  d.decided_at = s.maybe_integer(8);
  return d;
}

// Eight characters from an alphabet without look-alikes (no 0/O, 1/I/L): easy to read
// out and type. 32^8 codes; a collision is retried by the caller's UNIQUE constraint.
std::string new_device_code() {
  static constexpr char kAlphabet[] = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
  unsigned char random[8];
  if (RAND_bytes(random, sizeof random) != 1) std::abort();
  std::string code;
  for (unsigned char r : random) code += kAlphabet[r % (sizeof kAlphabet - 1)];
  return code.substr(0, 4) + "-" + code.substr(4);
}

const char* kGrantColumns = "id, subject, scopes, status, created_at, expires_at, decided_at, origin, note";

std::string scopes_text(const std::vector<Scope>& scopes) {
  std::string out;
  for (const Scope& s : scopes) out += (out.empty() ? "" : " ") + to_string(s);
  return out;
}

GrantRecord read_grant(const Statement& s) {
  GrantRecord g;
  g.id = s.text(0);
  g.subject = s.text(1);
  const std::string scopes = s.text(2);
  for (size_t from = 0, space; from < scopes.size(); from = space + 1) {
    space = std::min(scopes.find(' ', from), scopes.size());
    if (auto scope = parse_scope(std::string_view(scopes).substr(from, space - from))) g.scopes.push_back(*scope);
  }
  const std::string status = s.text(3);
  g.status = status == "approved" ? GrantStatus::approved
             : status == "refused" ? GrantStatus::refused
             : status == "revoked" ? GrantStatus::revoked
                                   : GrantStatus::pending;
  g.created_at = s.integer(4);
  g.expires_at = s.maybe_integer(5);
  g.decided_at = s.maybe_integer(6);
  g.origin = s.text(7);
  g.note = s.text(8);
  return g;
}

// Every row `s` gives, each read by `read`.
template <class Read>
auto read_rows(Statement& s, Read read) -> Result<std::vector<decltype(read(s))>> {
  std::vector<decltype(read(s))> out;
  for (;;) {
    GM_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    out.push_back(read(s));
  }
  return out;
}

}  // namespace

const char* to_string(GrantStatus status) {
  switch (status) {
    case GrantStatus::pending:
      return "pending";
    case GrantStatus::approved:
      return "approved";
    case GrantStatus::refused:
      return "refused";
    case GrantStatus::revoked:
      return "revoked";
  }
  return "pending";
}

std::vector<Scope> RevocationState::standing(std::vector<Scope> scopes, int64_t now) const {
  std::erase_if(scopes, [&](const Scope& s) { return !grant_stands(s.grant_id, now); });
  return scopes;
}

const char* to_string(DeviceStatus status) {
  switch (status) {
    case DeviceStatus::pending:
      return "pending";
    case DeviceStatus::approved:
      return "approved";
    case DeviceStatus::revoked:
      return "revoked";
  }
  return "pending";
}

fs::path StateStore::path_for(const fs::path& data_dir) { return data_dir / ".groundmist" / "server.db"; }

Result<std::unique_ptr<StateStore>> StateStore::open(const fs::path& data_dir) {
  const fs::path path = path_for(data_dir);
  GM_TRY(storage::create_directories_durably(path.parent_path()));
  // Create it private before SQLite opens it: it lists sessions and devices.
  if (int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); fd >= 0) ::close(fd);
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return error("cannot open " + path.string() + ": " + why);
  }
  std::unique_ptr<StateStore> store(new StateStore(db));
  sqlite3_busy_timeout(db, 5000);
  // What a failure here usually means, and what to do about it.
  auto explain = [&path](const Error& e) {
    std::string hint;
    if (e.message.find("locked") != std::string::npos || e.message.find("busy") != std::string::npos) {
      hint = " (another process holds it: a second server on the same data folder?)";
    } else if (e.message.find("not a database") != std::string::npos || e.message.find("malformed") != std::string::npos) {
      hint = " (damaged: move it aside to start with no sessions, root documents or devices; apps then log in again)";
    }
    return context(path.string(), Error{e.message + hint, e.code});
  };
  if (Status s = exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"); !s.ok()) {
    return explain(s.error());
  }
  if (Status s = store->migrate(); !s.ok()) return explain(s.error());
  return store;
}

Result<std::unique_ptr<StateStore>> StateStore::open_existing(const fs::path& data_dir) {
  std::error_code ec;
  const fs::path path = fs::absolute(path_for(data_dir), ec).lexically_normal();
  if (!fs::exists(path, ec)) {
    return error("no server state at " + path.string() +
                 ": is --data (or DATA_DIR) the server's data folder? `groundmist-sync serve` creates it");
  }
  return open(data_dir);
}

StateStore::~StateStore() { sqlite3_close(db_); }

Status StateStore::migrate() {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  GM_TRY(tx.began());
  Statement version(db_, "PRAGMA user_version");
  GM_ASSIGN_OR_RETURN(bool row, version.step());
  const int64_t current = row ? version.integer(0) : 0;
  constexpr int64_t latest = static_cast<int64_t>(std::size(kMigrations));
  static_assert(std::size(kMigrations) == kStateSchemaVersion);
  if (current > latest) {
    return error("schema version " + std::to_string(current) + " is newer than this server knows (" +
                 std::to_string(latest) + "): run the newer groundmist-sync, or restore a backup of server.db");
  }
  for (int64_t v = current; v < latest; ++v) GM_TRY(exec(db_, kMigrations[v]));
  if (current != latest) GM_TRY(exec(db_, ("PRAGMA user_version = " + std::to_string(latest)).c_str()));
  return tx.commit();
}

Status StateStore::add_session(const SessionRecord& r) {
  std::lock_guard lock(mutex_);
  Statement s(db_,
              "INSERT INTO sessions (id, grp, subject, kind, created_at, expires_at, revoked_at, origin, user_agent, "
              "address, device) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(r.id).bind(r.group).bind(r.subject).bind(r.kind).bind(r.created_at).bind(r.expires_at).bind(r.revoked_at);
  s.bind(r.origin).bind(r.user_agent).bind(r.address).bind(r.device);
  GM_TRY(s.run());
  // Sessions past their expiry are of no use to anyone after a week.
  Statement prune(db_, "DELETE FROM sessions WHERE expires_at < ?");
  return prune.bind(r.created_at - 7 * 24 * 3600).run();
}

Result<std::vector<SessionRecord>> StateStore::list_sessions(int64_t now, bool include_expired) const {
  std::lock_guard lock(mutex_);
  Statement s(db_, (std::string("SELECT ") + kSessionColumns +
                    " FROM sessions WHERE expires_at > ? ORDER BY created_at DESC, id")
                       .c_str());
  s.bind(include_expired ? int64_t{INT64_MIN} : now);
  return read_rows(s, read_session);
}

Result<bool> StateStore::revoke_session(const std::string& id, int64_t now) {
  std::lock_guard lock(mutex_);
  Statement s(db_, "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL");
  GM_TRY(s.bind(now).bind(id).run());
  if (sqlite3_changes(db_) > 0) return true;
  Statement exists(db_, "SELECT 1 FROM sessions WHERE id = ?");
  GM_ASSIGN_OR_RETURN(bool row, exists.bind(id).step());
  return row;
}

Status StateStore::revoke_all_sessions(int64_t now) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  GM_TRY(tx.began());
  GM_TRY(Statement(db_, "UPDATE sessions SET revoked_at = ? WHERE revoked_at IS NULL").bind(now).run());
  // Tokens issued in earlier seconds are refused whether they have a row or not (they may
  // predate the database). Those issued in this very second have rows, revoked above if
  // they came before this call; a login right after it gets a token that works.
  GM_TRY(Statement(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES ('revoked_before', ?)")
             .bind(std::to_string(now))
             .run());
  return tx.commit();
}

Result<RevocationState> StateStore::revocation_state(int64_t now) const {
  std::lock_guard lock(mutex_);
  RevocationState state;
  Statement s(db_, "SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > ?");
  s.bind(now);
  for (;;) {
    GM_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    state.revoked_sessions.insert(s.text(0));
  }
  Statement grants(db_, "SELECT id, expires_at FROM grants WHERE status = 'approved' AND (expires_at IS NULL OR expires_at > ?)");
  grants.bind(now);
  for (;;) {
    GM_ASSIGN_OR_RETURN(bool row, grants.step());
    if (!row) break;
    state.standing_grants[grants.text(0)] = grants.maybe_integer(1);
  }
  Statement consoles(db_, "SELECT id FROM sessions WHERE kind = 'console' AND revoked_at IS NULL AND expires_at > ?");
  consoles.bind(now);
  for (;;) {
    GM_ASSIGN_OR_RETURN(bool row, consoles.step());
    if (!row) break;
    state.console_sessions.insert(consoles.text(0));
  }
  Statement meta(db_, "SELECT value FROM meta WHERE key = 'revoked_before'");
  GM_ASSIGN_OR_RETURN(bool row, meta.step());
  if (row) state.revoked_before = std::strtoll(meta.text(0).c_str(), nullptr, 10);
  return state;
}

Result<int64_t> StateStore::data_version() const {
  std::lock_guard lock(mutex_);
  Statement s(db_, "PRAGMA data_version");
  GM_ASSIGN_OR_RETURN(bool row, s.step());
  return row ? s.integer(0) : 0;
}

Result<StateStore::Fingerprint> StateStore::fingerprint() const {
  std::lock_guard lock(mutex_);
  Statement s(db_, "PRAGMA data_version");
  GM_ASSIGN_OR_RETURN(bool row, s.step());
  return Fingerprint{row ? s.integer(0) : 0, static_cast<int64_t>(sqlite3_total_changes64(db_))};
}

Result<std::map<std::string, std::string>> StateStore::root_docs() const {
  std::lock_guard lock(mutex_);
  Statement s(db_, "SELECT grp, url FROM root_docs");
  std::map<std::string, std::string> roots;
  for (;;) {
    GM_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) return roots;
    roots[s.text(0)] = s.text(1);
  }
}

Status StateStore::add_console_link(const std::string& code_hash, int64_t expires_at, int64_t now) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  GM_TRY(tx.began());
  GM_TRY(Statement(db_, "DELETE FROM console_links WHERE expires_at <= ?").bind(now).run());
  GM_TRY(Statement(db_, "INSERT INTO console_links (code_hash, created_at, expires_at) VALUES (?, ?, ?)")
             .bind(code_hash)
             .bind(now)
             .bind(expires_at)
             .run());
  return tx.commit();
}

Result<bool> StateStore::take_console_link(const std::string& code_hash, int64_t now) {
  std::lock_guard lock(mutex_);
  // One statement: of two requests racing with the same code, only one deletes the row.
  GM_TRY(Statement(db_, "DELETE FROM console_links WHERE code_hash = ? AND expires_at > ?").bind(code_hash).bind(now).run());
  return sqlite3_changes(db_) > 0;
}

Result<std::optional<std::string>> StateStore::root_doc(const std::string& group) const {
  std::lock_guard lock(mutex_);
  Statement s(db_, "SELECT url FROM root_docs WHERE grp = ?");
  GM_ASSIGN_OR_RETURN(bool row, s.bind(group).step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.text(0));
}

Result<std::optional<std::string>> StateStore::root_doc_first_wins(const std::string& group, const std::string& url,
                                                                   int64_t now) {
  if (!url.empty()) {
    std::lock_guard lock(mutex_);
    GM_TRY(Statement(db_, "INSERT OR IGNORE INTO root_docs (grp, url, set_at) VALUES (?, ?, ?)")
               .bind(group)
               .bind(url)
               .bind(now)
               .run());
  }
  return root_doc(group);
}

Status StateStore::set_root_doc(const std::string& group, const std::string& url, int64_t now) {
  std::lock_guard lock(mutex_);
  return Statement(db_, "INSERT OR REPLACE INTO root_docs (grp, url, set_at) VALUES (?, ?, ?)")
      .bind(group)
      .bind(url)
      .bind(now)
      .run();
}

Result<bool> StateStore::remember_jti(const std::string& issuer, const std::string& jti, int64_t keep_until,
                                      int64_t now) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  GM_TRY(tx.began());
  GM_TRY(Statement(db_, "DELETE FROM seen_jti WHERE keep_until < ?").bind(now).run());
  GM_TRY(Statement(db_, "INSERT OR IGNORE INTO seen_jti (issuer, jti, keep_until) VALUES (?, ?, ?)")
             .bind(issuer)
             .bind(jti)
             .bind(keep_until)
             .run());
  const bool fresh = sqlite3_changes(db_) > 0;
  GM_TRY(tx.commit());
  return fresh;
}

Result<std::optional<DeviceRecord>> StateStore::device_for_key(const std::string& jkt,
                                                               const std::string& group) const {
  std::lock_guard lock(mutex_);
  Statement s(db_, (std::string("SELECT ") + kDeviceColumns + " FROM devices WHERE jkt = ? AND grp = ?").c_str());
  GM_ASSIGN_OR_RETURN(bool row, s.bind(jkt).bind(group).step());
  if (!row) return std::optional<DeviceRecord>();
  return std::optional<DeviceRecord>(read_device(s));
}

Result<DeviceRecord> StateStore::add_pending_device(DeviceRecord d, size_t max_pending) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  GM_TRY(tx.began());
  // Anyone can ask, so requests wait an hour at most, and past `max_pending` new ones
  // are refused (not the oldest dropped: a flood must not push out the one the owner is
  // about to approve).
  GM_TRY(Statement(db_, "DELETE FROM devices WHERE status = 'pending' AND created_at < ?")
             .bind(d.created_at - kPendingDeviceSeconds)
             .run());
  Statement count(db_, "SELECT COUNT(*) FROM devices WHERE status = 'pending'");
  GM_ASSIGN_OR_RETURN(bool counted, count.step());
  if (counted && count.integer(0) >= static_cast<int64_t>(max_pending)) {
    return limit_error(std::to_string(count.integer(0)) +
                       " devices already wait for the owner's approval; new ones are refused until the owner approves "
                       "or revokes them (`groundmist-sync devices list`) or they expire after an hour");
  }
  d.status = DeviceStatus::pending;
  for (int attempt = 0;; ++attempt) {
    d.code = new_device_code();
    Statement s(db_,
                "INSERT OR IGNORE INTO devices (code, jkt, grp, status, origin, user_agent, address, created_at) "
                "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)");
    GM_TRY(s.bind(d.code).bind(d.jkt).bind(d.group).bind(d.origin).bind(d.user_agent).bind(d.address)
               .bind(d.created_at)
               .run());
    if (sqlite3_changes(db_) > 0) break;
    // Ignored: the key already has a row for this group (a race with another login), or
    // the code collided. The first: return what is there.
    Statement existing(db_,
                       (std::string("SELECT ") + kDeviceColumns + " FROM devices WHERE jkt = ? AND grp = ?").c_str());
    GM_ASSIGN_OR_RETURN(bool row, existing.bind(d.jkt).bind(d.group).step());
    if (row) {
      DeviceRecord found = read_device(existing);
      GM_TRY(tx.commit());
      return found;
    }
    if (attempt == 8) return error("database: no free device code");
  }
  GM_TRY(tx.commit());
  return d;
}

Result<std::vector<DeviceRecord>> StateStore::list_devices() const {
  std::lock_guard lock(mutex_);
  Statement s(db_, (std::string("SELECT ") + kDeviceColumns + " FROM devices ORDER BY created_at DESC, code").c_str());
  return read_rows(s, read_device);
}

Result<bool> StateStore::set_device_status(const std::string& code, DeviceStatus status, int64_t now) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  GM_TRY(tx.began());
  GM_TRY(Statement(db_, "UPDATE devices SET status = ?, decided_at = ? WHERE code = ?")
             .bind(std::string(to_string(status)))
             .bind(now)
             .bind(code)
             .run());
  if (sqlite3_changes(db_) == 0) return false;
  if (status == DeviceStatus::revoked) {
    GM_TRY(Statement(db_, "UPDATE sessions SET revoked_at = ? WHERE device = ? AND revoked_at IS NULL")
               .bind(now)
               .bind(code)
               .run());
  }
  GM_TRY(tx.commit());
  return true;
}

Result<GrantRecord> StateStore::insert_grant(GrantRecord g) {
  // What no one needs any more: refusals and revocations a month old, grants expired as
  // long ago (tokens never outlive their grants), requests nobody answered.
  const int64_t old = g.created_at - kPendingGrantSeconds;
  GM_TRY(Statement(db_,
                   "DELETE FROM grants WHERE (status IN ('refused', 'revoked') AND decided_at < ?) OR "
                   "(status = 'approved' AND expires_at < ?) OR (status = 'pending' AND created_at < ?)")
             .bind(old)
             .bind(old)
             .bind(old)
             .run());
  for (int attempt = 0;; ++attempt) {
    g.id = "G" + new_device_code();
    Statement s(db_,
                "INSERT OR IGNORE INTO grants (id, subject, scopes, status, created_at, expires_at, decided_at, origin, "
                "note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    GM_TRY(s.bind(g.id).bind(g.subject).bind(scopes_text(g.scopes)).bind(std::string(to_string(g.status)))
               .bind(g.created_at).bind(g.expires_at).bind(g.decided_at).bind(g.origin).bind(g.note)
               .run());
    if (sqlite3_changes(db_) > 0) return g;
    if (attempt == 8) return error("database: no free grant id");
  }
}

Result<GrantRecord> StateStore::add_grant(GrantRecord g) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  GM_TRY(tx.began());
  GM_ASSIGN_OR_RETURN(GrantRecord added, insert_grant(std::move(g)));
  GM_TRY(tx.commit());
  return added;
}

Result<GrantRecord> StateStore::request_grant(GrantRecord g, size_t max_pending) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  GM_TRY(tx.began());
  Statement same(db_, (std::string("SELECT ") + kGrantColumns +
                       " FROM grants WHERE subject = ? AND scopes = ? AND status = 'pending' AND created_at >= ?")
                          .c_str());
  GM_ASSIGN_OR_RETURN(bool found,
                      same.bind(g.subject).bind(scopes_text(g.scopes)).bind(g.created_at - kPendingGrantSeconds).step());
  if (found) return read_grant(same);
  Statement count(db_, "SELECT COUNT(*), SUM(subject = ?) FROM grants WHERE status = 'pending' AND created_at >= ?");
  GM_ASSIGN_OR_RETURN(bool counted, count.bind(g.subject).bind(g.created_at - kPendingGrantSeconds).step());
  if (counted && count.integer(1) >= kPendingGrantsPerSubject) {
    return limit_error(g.subject + " already has " + std::to_string(count.integer(1)) +
                       " scope requests waiting for the owner (`groundmist-sync grants list`)");
  }
  if (counted && count.integer(0) >= static_cast<int64_t>(max_pending)) {
    return limit_error(std::to_string(count.integer(0)) +
                       " scope requests already wait for the owner; new ones are refused until the owner answers "
                       "them (`groundmist-sync grants list`)");
  }
  g.status = GrantStatus::pending;
  g.decided_at.reset();
  GM_ASSIGN_OR_RETURN(GrantRecord added, insert_grant(std::move(g)));
  GM_TRY(tx.commit());
  return added;
}

Result<std::vector<GrantRecord>> StateStore::list_grants() const {
  std::lock_guard lock(mutex_);
  Statement s(db_, (std::string("SELECT ") + kGrantColumns + " FROM grants ORDER BY created_at DESC, id").c_str());
  return read_rows(s, read_grant);
}

Result<std::optional<GrantRecord>> StateStore::find_grant(const std::string& id) const {
  std::lock_guard lock(mutex_);
  Statement s(db_, (std::string("SELECT ") + kGrantColumns + " FROM grants WHERE id = ?").c_str());
  GM_ASSIGN_OR_RETURN(bool row, s.bind(id).step());
  if (!row) return std::optional<GrantRecord>();
  return std::optional<GrantRecord>(read_grant(s));
}

Result<std::vector<GrantRecord>> StateStore::grants_where(const char* condition, const std::string& subject,
                                                          int64_t time) const {
  std::lock_guard lock(mutex_);
  Statement s(db_, (std::string("SELECT ") + kGrantColumns + " FROM grants WHERE subject = ? AND " + condition +
                    " ORDER BY created_at, id")
                       .c_str());
  s.bind(subject).bind(time);
  return read_rows(s, read_grant);
}

Result<std::vector<GrantRecord>> StateStore::standing_grants(const std::string& subject, int64_t now) const {
  return grants_where("status = 'approved' AND (expires_at IS NULL OR expires_at > ?)", subject, now);
}

Result<std::vector<GrantRecord>> StateStore::refused_grants(const std::string& subject, int64_t now) const {
  return grants_where("status = 'refused' AND decided_at >= ?", subject, now - kPendingGrantSeconds);
}

Result<bool> StateStore::set_grant_status(const std::string& id, GrantStatus status, int64_t now) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);  // the check and the change together, whatever other process writes
  GM_TRY(tx.began());
  Statement current(db_, "SELECT status FROM grants WHERE id = ?");
  GM_ASSIGN_OR_RETURN(bool row, current.bind(id).step());
  if (!row) return false;
  const std::string from = current.text(0);
  const bool allowed = status == GrantStatus::revoked ? from == "pending" || from == "approved" || from == "revoked"
                       : status == GrantStatus::pending ? false
                                                        : from == "pending" || from == to_string(status);
  if (!allowed) return error("grant " + id + " is " + from + "; it cannot become " + to_string(status));
  if (from == to_string(status)) return true;
  GM_TRY(Statement(db_, "UPDATE grants SET status = ?, decided_at = ? WHERE id = ?")
             .bind(std::string(to_string(status)))
             .bind(now)
             .bind(id)
             .run());
  GM_TRY(tx.commit());
  return true;
}

}  // namespace gm::auth
