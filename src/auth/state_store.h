// The server's own state in SQLite: `<data>/.groundmist/server.db` (DESIGN.md "Data folder").
//
// Usage:
//   GM_ASSIGN_OR_RETURN(auto store, gm::auth::StateStore::open(data_dir));
//   GM_TRY(store->add_session(session));
//   GM_ASSIGN_OR_RETURN(bool fresh, store->remember_jti(iss, jti, exp + leeway, now));
//   GM_ASSIGN_OR_RETURN(std::optional<std::string> root, store->root_doc_first_wins(group, url, now));
//
// Tables (schema version in PRAGMA user_version, migrated forward at open; a database
// from a newer server is refused rather than guessed at):
//   sessions   one row per session token handed out (by /authenticate or `token`): id
//              (the token's jti), group, subject DID, how it was obtained, created,
//              expires, revoked (unix s, NULL while valid), Origin, User-Agent, address,
//              and the device (DPoP key) it came from. Revocation is a deny-list: a
//              token with no row (minted before the database existed) is valid until it
//              expires, unless it was issued before `sessions revoke --all` (meta
//              `revoked_before`).
//   root_docs  group → the first rootDocUrl an app gave for it (first wins, kept across
//              restarts; the owner may replace it with `groundmist-sync root`).
//   seen_jti   (issuer, jti) of every accepted credential until it expires, so that
//              none is accepted twice, across restarts.
//   devices    DPoP proof keys (by RFC 7638 thumbprint) per group: pending until the
//              owner approves them, then approved or revoked.
//   grants     scopes beyond its own group a subject may reach (auth/scopes.h,
//              docs/grants.md): id, subject, scopes ("nsid:access" space-separated),
//              status (pending until the owner approves or refuses it; approved;
//              refused; revoked), created, expires (NULL: never), decided, the Origin
//              and a note from the request.
//   console_links  one-time log-in links of the owner's console (`console-link`,
//              docs/console.md): the SHA-256 (hex) of each code, created, expires. A
//              code is deleted when it is used; expired ones as others are added.
//   meta       key/value: revoked_before.
//
// Every call is one transaction, durable when it returns (WAL, synchronous=FULL): a
// credential is never accepted twice because a crash forgot it. The store serializes
// its callers with a mutex; other processes (the CLI while the server runs) share the
// file through SQLite's own locking, waiting up to 5 s for a busy database.
// Not for the io thread: a call may wait on the disk or on another process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "auth/scopes.h"
#include "util/result.h"

struct sqlite3;

namespace gm::auth {

inline constexpr int kStateSchemaVersion = 3;
inline constexpr int64_t kPendingDeviceSeconds = 3600;

struct SessionRecord {
  std::string id;       // the session token's jti
  std::string group;
  std::string subject;  // owner DID, or "" for a token minted on the machine
  std::string kind;     // "service-auth", "dpop" or "local"
  int64_t created_at = 0;
  int64_t expires_at = 0;
  std::optional<int64_t> revoked_at;
  std::string origin, user_agent, address;
  std::string device;   // device code for DPoP logins, else ""
};

enum class DeviceStatus { pending, approved, revoked };
const char* to_string(DeviceStatus status);

struct DeviceRecord {
  std::string code;  // short code the owner types: `devices approve CODE`
  std::string jkt;   // thumbprint of the DPoP key
  std::string group;
  DeviceStatus status = DeviceStatus::pending;
  std::string origin, user_agent, address;
  int64_t created_at = 0;
  std::optional<int64_t> decided_at;
};

enum class GrantStatus { pending, approved, refused, revoked };
const char* to_string(GrantStatus status);
// Pending scope requests wait this long for the owner, then go; a refusal holds as long
// (the same app asking again within it is answered "refused", not queued again). Grants
// refused, revoked or expired that long ago are deleted.
inline constexpr int64_t kPendingGrantSeconds = 30 * 24 * 3600;
// Scope requests one subject may have waiting at once (and the whole server: the
// `max_pending` of request_grant).
inline constexpr int64_t kPendingGrantsPerSubject = 4;

struct GrantRecord {
  std::string id;       // "G" + a code like a device's: `grants approve GXXXX-XXXX`
  std::string subject;  // who: "origin:https://app.example", "device:CODE", "token:NAME"
  std::vector<Scope> scopes;
  GrantStatus status = GrantStatus::pending;
  int64_t created_at = 0;
  std::optional<int64_t> expires_at;  // none: until revoked
  std::optional<int64_t> decided_at;
  std::string origin;  // of the request that asked for it, if any
  std::string note;    // what the owner sees beside it (the app's User-Agent, a token's name)
  bool stands(int64_t now) const { return status == GrantStatus::approved && (!expires_at || *expires_at > now); }
};

// What revocation checks need, cheap to copy around.
struct RevocationState {
  std::set<std::string> revoked_sessions;  // ids of revoked sessions not yet expired
  int64_t revoked_before = 0;              // tokens issued before this second are refused (0: none)
  // Grants approved and not expired when loaded → their expiry. An allow-list: a grant
  // the database does not hold (a restored backup, a token minted against another data
  // folder with the same key) stands for nothing.
  std::map<std::string, std::optional<int64_t>> standing_grants;
  // Console sessions recorded, not revoked and not expired: an allow-list too, so that a
  // restored backup cannot bring back a console session revoked since.
  std::set<std::string> console_sessions;
  bool revoked(const std::string& session_id, int64_t issued_at) const {
    return issued_at < revoked_before || revoked_sessions.count(session_id) != 0;
  }
  bool grant_stands(const std::string& id, int64_t now) const {
    auto it = standing_grants.find(id);
    return it != standing_grants.end() && (!it->second || *it->second > now);
  }
  // The scopes among `scopes` whose grant stands at `now`.
  std::vector<Scope> standing(std::vector<Scope> scopes, int64_t now) const;
};

class StateStore {
 public:
  // Opens (creating it, mode 0600, and its folder) and migrates the database.
  static Result<std::unique_ptr<StateStore>> open(const std::filesystem::path& data_dir);
  // The same for the owner's commands, which must act on the server's database, never
  // on a new empty one (a mistyped --data would "revoke" nothing and say it did).
  static Result<std::unique_ptr<StateStore>> open_existing(const std::filesystem::path& data_dir);
  static std::filesystem::path path_for(const std::filesystem::path& data_dir);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Sessions.
  Status add_session(const SessionRecord& session);
  // All sessions, newest first; expired ones only with `include_expired`.
  Result<std::vector<SessionRecord>> list_sessions(int64_t now, bool include_expired) const;
  // False if there is no such session.
  Result<bool> revoke_session(const std::string& id, int64_t now);
  // Every session issued until now, listed or not.
  Status revoke_all_sessions(int64_t now);
  Result<RevocationState> revocation_state(int64_t now) const;
  // Changes whenever another connection (another process) commits: a cheap way to
  // notice that the CLI revoked something.
  Result<int64_t> data_version() const;

  // Something to compare to notice any change: commits by other processes (the
  // `data_version` pragma) and rows this connection changed (SQLite's total changes).
  struct Fingerprint {
    int64_t others = 0, own = 0;
    bool operator==(const Fingerprint&) const = default;
  };
  Result<Fingerprint> fingerprint() const;

  // The console's log-in links, by the SHA-256 (hex) of their code. take_console_link
  // is true once for a code that is known and not expired, and forgets it.
  Status add_console_link(const std::string& code_hash, int64_t expires_at, int64_t now);
  Result<bool> take_console_link(const std::string& code_hash, int64_t now);

  // Root documents.
  Result<std::optional<std::string>> root_doc(const std::string& group) const;
  // Every group's, by group.
  Result<std::map<std::string, std::string>> root_docs() const;
  // Keeps `url` if the group has none yet; returns the group's root (which may be
  // another URL, or none when `url` is empty and none was set).
  Result<std::optional<std::string>> root_doc_first_wins(const std::string& group, const std::string& url,
                                                          int64_t now);
  Status set_root_doc(const std::string& group, const std::string& url, int64_t now);

  // Replay protection: true the first time (issuer, jti) is seen, false after that
  // until `keep_until` has passed. Expired entries are dropped as it goes.
  Result<bool> remember_jti(const std::string& issuer, const std::string& jti, int64_t keep_until, int64_t now);

  // Devices.
  Result<std::optional<DeviceRecord>> device_for_key(const std::string& jkt, const std::string& group) const;
  // Records a pending device. Pending ones expire after kPendingDeviceSeconds; with
  // `max_pending` already waiting, a new one is refused (a limit error).
  Result<DeviceRecord> add_pending_device(DeviceRecord device, size_t max_pending);
  Result<std::vector<DeviceRecord>> list_devices() const;
  // False if there is no such device. Revoking also revokes the sessions it opened.
  Result<bool> set_device_status(const std::string& code, DeviceStatus status, int64_t now);

  // Grants. add_grant records one as given (the owner's own: `grants add`, `token
  // --scope`), with a fresh id. request_grant records a pending one, or returns the
  // pending request of the same subject and scopes; with `max_pending` already waiting,
  // a new one is refused (a limit error).
  Result<GrantRecord> add_grant(GrantRecord grant);
  Result<GrantRecord> request_grant(GrantRecord grant, size_t max_pending);
  Result<std::vector<GrantRecord>> list_grants() const;
  Result<std::optional<GrantRecord>> find_grant(const std::string& id) const;
  // Those of `subject` that stand now.
  Result<std::vector<GrantRecord>> standing_grants(const std::string& subject, int64_t now) const;
  // Those of `subject` refused less than kPendingGrantSeconds ago.
  Result<std::vector<GrantRecord>> refused_grants(const std::string& subject, int64_t now) const;
  // pending → approved or refused; pending or approved → revoked. False if there is no
  // such grant; an error if it cannot move so.
  Result<bool> set_grant_status(const std::string& id, GrantStatus status, int64_t now);

 private:
  explicit StateStore(sqlite3* db) : db_(db) {}
  Status migrate();
  // Under mutex_: inserts `grant` with a fresh id; drops grants long decided.
  Result<GrantRecord> insert_grant(GrantRecord grant);
  Result<std::vector<GrantRecord>> grants_where(const char* condition, const std::string& subject, int64_t time) const;

  mutable std::mutex mutex_;
  sqlite3* db_;
};

}  // namespace gm::auth
