#include "cli/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "automerge/change_graph.h"
#include "storage/durable_file.h"
#include "util/hex.h"
#include "util/sha256.h"

namespace gm::cli {
namespace fs = std::filesystem;
using storage::CopiedFile;

namespace {

constexpr std::string_view kFormat = "groundmist-sync-backup";
constexpr std::string_view kManifest = "manifest.json";
constexpr std::string_view kDataFolder = "data";
constexpr std::string_view kStateFolder = ".groundmist";

fs::path absolute_path(const fs::path &p) {
  std::error_code ec;
  fs::path a = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return a.empty() ? fs::absolute(p).lexically_normal() : a;
}

bool is_within(const fs::path &inner, const fs::path &outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

// An absent folder, or an empty one, may be written to; anything else is refused.
Status require_empty_target(const fs::path &path, const std::string &what) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return storage::errno_error("cannot inspect", path, errno);
  }
  if (!S_ISDIR(st.st_mode))
    return error(what + " " + path.string() + " exists and is not a folder; name a new or empty folder");
  std::error_code ec;
  fs::directory_iterator it(path, ec);
  if (ec) return error("cannot list " + path.string() + ": " + ec.message());
  if (it != fs::directory_iterator()) {
    return error(what + " " + path.string() + " is not empty (it holds " + it->path().filename().string() +
                 "); name a new or empty folder, nothing was written");
  }
  return Status::Ok();
}

fs::path temp_beside(const fs::path &target, std::string_view kind) {
  return target.parent_path() / ("." + target.filename().string() + "." + std::string(kind) + "-tmp-" +
                                 storage::random_suffix().substr(0, 12));
}

std::string iso8601_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct Sqlite {
  sqlite3 *db = nullptr;
  ~Sqlite() { sqlite3_close(db); }
  std::string message() const { return db ? sqlite3_errmsg(db) : "out of memory"; }
};

Status sqlite_exec(sqlite3 *db, const char *sql, const fs::path &path) {
  char *err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    return error(path.string() + ": " + m);
  }
  return Status::Ok();
}

// "ok", or what PRAGMA integrity_check found.
Status sqlite_check(const fs::path &path) {
  Sqlite db;
  if (sqlite3_open_v2(path.c_str(), &db.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return error("cannot open " + path.string() + ": " + db.message());
  }
  sqlite3_stmt *stmt = nullptr;
  if (sqlite3_prepare_v2(db.db, "PRAGMA integrity_check", -1, &stmt, nullptr) != SQLITE_OK) {
    return error(path.string() + ": " + db.message());
  }
  std::string result;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const auto *text = sqlite3_column_text(stmt, 0);
    result += (result.empty() ? "" : "; ") + std::string(text ? reinterpret_cast<const char *>(text) : "");
  }
  sqlite3_finalize(stmt);
  if (result != "ok") return error(path.string() + " fails its integrity check: " + result.substr(0, 400));
  return Status::Ok();
}

// A consistent copy of a live database: SQLite's online backup in one step (one read
// transaction on the source; in WAL mode the server keeps writing meanwhile), then made a
// self-contained file (journal_mode=DELETE: no -wal beside it).
Status sqlite_copy(const fs::path &from, const fs::path &to) {
  // The copy lists sessions and devices: private before SQLite creates it.
  GM_TRY(storage::make_private_folders(to.parent_path()));
  if (int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600); fd >= 0) {
    ::close(fd);
  } else {
    return storage::errno_error("cannot create", to, errno);
  }
  Sqlite src, dst;
  // Read-write without create: read-only connections to a WAL database need its
  // -shm writable anyway, and a missing file must not be made.
  if (sqlite3_open_v2(from.c_str(), &src.db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    return error("cannot open " + from.string() + ": " + src.message());
  }
  sqlite3_busy_timeout(src.db, 5000);
  if (sqlite3_open_v2(to.c_str(), &dst.db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    return error("cannot open " + to.string() + ": " + dst.message());
  }
  sqlite3_backup *b = sqlite3_backup_init(dst.db, "main", src.db, "main");
  if (!b) return error("cannot back up " + from.string() + ": " + dst.message());
  int rc = SQLITE_OK;
  for (int attempt = 0; attempt < 100; ++attempt) {
    rc = sqlite3_backup_step(b, -1);
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) return error("cannot back up " + from.string() + ": " + sqlite3_errstr(rc));
  GM_TRY(sqlite_exec(dst.db, "PRAGMA journal_mode=DELETE", to));
  return Status::Ok();
}

Result<CopiedFile> describe(const fs::path &root, const fs::path &relative) {
  GM_ASSIGN_OR_RETURN(std::optional<Bytes> bytes, storage::read_file(root / relative));
  if (!bytes) return error((root / relative).string() + " vanished");
  return CopiedFile{relative, bytes->size(), sha256(*bytes)};
}

// The server's state folder: databases by the backup API, the rest as files.
Status copy_state(const fs::path &from, const fs::path &to, const fs::path &relative, int depth,
                  std::vector<CopiedFile> &files, BackupSummary &summary) {
  std::vector<storage::Env::Entry> entries;
  if (storage::list_folder_atomically((from / relative).c_str(), entries) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return storage::errno_error("cannot list folder", from / relative, errno);
  }
  std::sort(entries.begin(), entries.end(), [](const auto &a, const auto &b) { return a.name < b.name; });
  for (const auto &e : entries) {
    const fs::path rel = relative / e.name;
    const std::string &n = e.name;
    if (n.front() == '.' || n == "server.lock" || n.ends_with("-wal") || n.ends_with("-shm") ||
        n.ends_with("-journal") || (depth == 0 && n == "verified")) {
      continue;
    }
    if (e.type == storage::Env::Entry::kFolder) {
      if (depth < 8) GM_TRY(copy_state(from, to, rel, depth + 1, files, summary));
    } else if (e.type != storage::Env::Entry::kFile) {
      summary.skipped.push_back((fs::path(kStateFolder) / rel).string());
    } else if (n.ends_with(".db")) {
      GM_TRY(sqlite_copy(from / rel, to / rel));
      GM_ASSIGN_OR_RETURN(CopiedFile f, describe(to, rel));
      files.push_back(f);
      if (depth == 0 && n == "server.db") summary.database = true;
    } else {
      GM_ASSIGN_OR_RETURN(std::optional<Bytes> bytes, storage::read_file(from / rel));
      if (!bytes) continue;  // replaced or removed meanwhile: not ours to keep
      GM_ASSIGN_OR_RETURN(Sha256Digest digest, storage::write_new_file(to / rel, *bytes, 0600));
      files.push_back(CopiedFile{rel, bytes->size(), digest});
      if (depth == 0 && n == "secret.key") summary.secret_key = true;
    }
  }
  return Status::Ok();
}

struct ManifestEntry {
  std::string path;  // relative to the backup folder
  uint64_t bytes = 0;
  std::string sha256;
};

struct Manifest {
  std::string created_at, server_version;
  std::vector<std::string> groups;
  size_t documents = 0;
  std::vector<ManifestEntry> files;
};

Result<Manifest> read_manifest(const fs::path &backup) {
  const fs::path path = backup / kManifest;
  GM_ASSIGN_OR_RETURN(std::optional<Bytes> bytes, storage::read_file(path));
  if (!bytes)
    return error("no " + path.string() + ": is " + backup.string() + " a folder written by `groundmist-sync backup`?");
  auto damaged = [&path](const std::string &why) {
    return error("backup damaged: " + path.string() + " " + why + "; nothing was restored");
  };
  nlohmann::json j = nlohmann::json::parse(bytes->begin(), bytes->end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return damaged("is not valid JSON");
  if (j.value("format", "") != kFormat) return damaged("is not a groundmist-sync backup manifest");
  if (!j.contains("formatVersion") || !j["formatVersion"].is_number_integer()) return damaged("has no formatVersion");
  if (j["formatVersion"].get<int>() > kBackupFormatVersion) {
    return error(path.string() + " is format version " + std::to_string(j["formatVersion"].get<int>()) +
                 ", newer than this groundmist-sync reads (" + std::to_string(kBackupFormatVersion) +
                 "): restore with the version that wrote it, or newer");
  }
  Manifest m;
  try {
    m.created_at = j.value("createdAt", "");
    m.server_version = j.value("serverVersion", "");
    m.groups = j.value("groups", std::vector<std::string>{});
    m.documents = j.at("counts").value("documents", size_t{0});
    std::set<std::string> seen;
    for (const auto &f : j.at("files")) {
      ManifestEntry e{f.at("path").get<std::string>(), f.at("bytes").get<uint64_t>(),
                      f.at("sha256").get<std::string>()};
      const fs::path p(e.path);
      // Only plain relative paths under data/: a manifest cannot send a restore elsewhere.
      bool plain = !p.empty() && p.is_relative() && *p.begin() == kDataFolder;
      for (const auto &part : p) plain = plain && part != ".." && part != "." && !part.empty();
      if (!plain || !seen.insert(e.path).second) return damaged("lists a bad path: " + e.path);
      m.files.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception &) {
    return damaged("is missing fields (files, counts)");
  }
  return m;
}

// Every document's snapshot and incremental files, by document folder (…/<2>/<rest>/).
std::map<std::string, std::vector<std::string>> documents_of(const std::vector<ManifestEntry> &files) {
  std::map<std::string, std::vector<std::string>> docs;
  for (const auto &f : files) {
    const fs::path p(f.path);
    const std::string kind = p.parent_path().filename().string();
    if (kind != "snapshot" && kind != "incremental") continue;
    docs[p.parent_path().parent_path().string()].push_back(f.path);
  }
  return docs;
}

// Each document's files load into one change graph, as the server would load them.
// Documents are named by their folder relative to `prefix`.
std::vector<DocumentProblem> check_documents(const fs::path &root, const std::vector<ManifestEntry> &files,
                                             const fs::path &prefix) {
  std::vector<DocumentProblem> problems;
  for (const auto &[doc, paths] : documents_of(files)) {
    automerge::ChangeGraph graph;
    graph.set_trusted(true);  // stored by a server that checked it; limits for
                              // input do not apply
    std::string reason;
    for (const std::string &path : paths) {
      auto bytes = storage::read_file(root / path);
      if (!bytes.ok() || !bytes->has_value()) {
        reason = path + ": cannot be read";
        break;
      }
      if (Status s = graph.load(**bytes); !s.ok()) {
        reason = path + " does not load: " + s.error().message;
        break;
      }
    }
    if (reason.empty() && graph.empty()) reason = "no changes";
    if (!reason.empty()) {
      problems.push_back({prefix.empty() ? doc : fs::path(doc).lexically_relative(prefix).string(), reason});
    }
  }
  return problems;
}

void list_files_below(const fs::path &root, const fs::path &relative, std::vector<std::string> &out) {
  std::error_code ec;
  for (fs::directory_iterator it(root / relative, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path rel = relative / it->path().filename();
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      list_files_below(root, rel, out);
    } else {
      out.push_back(rel.string());
    }
  }
}

// Reads every file of the manifest from `backup` and checks it; with `to`, writes it there
// too (the bytes checked are the bytes written).
Status check_and_copy(const fs::path &backup, const Manifest &m, const fs::path *to, RestoreSummary &summary) {
  std::set<std::string> listed;
  for (const auto &f : m.files) listed.insert(f.path);
  std::vector<std::string> present;
  list_files_below(backup, kDataFolder, present);
  for (const auto &p : present) {
    if (!listed.count(p)) {
      return error("backup damaged: " + (backup / p).string() +
                   " is not in the manifest (added after the backup was "
                   "made?); nothing was restored");
    }
  }
  for (const auto &f : m.files) {
    const fs::path path = backup / f.path;
    auto bytes = storage::read_file(path);
    if (!bytes.ok()) return context("backup unreadable", bytes.error());
    if (!bytes->has_value()) return error("backup damaged: " + path.string() + " is missing; nothing was restored");
    const std::string actual = to_hex(sha256(**bytes));
    if ((*bytes)->size() != f.bytes || actual != f.sha256) {
      return error("backup damaged: " + path.string() + " differs from the manifest (" +
                   std::to_string((*bytes)->size()) + " bytes, SHA-256 " + actual.substr(0, 16) + "…; expected " +
                   std::to_string(f.bytes) + " bytes, " + f.sha256.substr(0, 16) + "…); nothing was restored");
    }
    if (to) {
      const fs::path rel = fs::path(f.path).lexically_relative(kDataFolder);
      GM_TRY(storage::write_new_file(*to / rel, **bytes, 0600));
    }
    ++summary.files;
    summary.bytes += f.bytes;
  }
  summary.groups = m.groups;
  summary.documents = m.documents;
  summary.created_at = m.created_at;
  summary.server_version = m.server_version;
  return Status::Ok();
}

Status check_databases(const fs::path &root, const Manifest &m) {
  for (const auto &f : m.files) {
    if (f.path.ends_with(".db")) GM_TRY(sqlite_check(root / f.path));
  }
  return Status::Ok();
}

// Removes a temp folder unless dismissed.
struct TempFolder {
  fs::path path;
  ~TempFolder() {
    if (!path.empty()) (void)storage::remove_tree(storage::Env::posix(), path);
  }
};

// Renames the finished temp folder to `target` (absent, or an empty folder it replaces) and
// makes that durable.
Status publish(TempFolder &temp, const fs::path &target) {
  GM_TRY(storage::sync_filesystem(storage::Env::posix(), temp.path));
  if (::rename(temp.path.c_str(), target.c_str()) != 0) {
    return storage::errno_error("cannot rename " + temp.path.string() + " to", target, errno);
  }
  temp.path.clear();
  return storage::sync_directory(target.parent_path());
}

}  // namespace

Result<BackupSummary> write_backup(const BackupOptions &options) {
  const fs::path data = absolute_path(options.data_dir);
  const fs::path out = absolute_path(options.out);
  struct stat st {};
  if (::stat(data.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return error("no data folder at " + data.string() + ": is --data (or DATA_DIR) the server's data folder?");
  }
  if (is_within(out, data) || is_within(data, out)) {
    return error("the backup " + out.string() + " must lie outside the data folder " + data.string());
  }
  GM_TRY(require_empty_target(out, "backup folder"));
  GM_TRY(storage::create_directories_durably(out.parent_path()));

  TempFolder temp{temp_beside(out, "backup")};
  GM_TRY(storage::make_private_folders(temp.path / kDataFolder));
  std::vector<CopiedFile> files;
  GM_ASSIGN_OR_RETURN(storage::StoreCopyStats stats,
                      storage::copy_document_stores(data, temp.path / kDataFolder, options.copy, files));
  BackupSummary summary;
  summary.out = out;
  summary.groups = stats.groups;
  summary.documents = stats.documents;
  summary.repeated_passes = stats.repeated_passes;
  summary.skipped = stats.skipped;
  std::vector<CopiedFile> state;
  GM_TRY(copy_state(data / kStateFolder, temp.path / kDataFolder / kStateFolder, fs::path(), 0, state, summary));
  for (CopiedFile &f : state) {
    f.relative = fs::path(kStateFolder) / f.relative;
    files.push_back(std::move(f));
  }

  nlohmann::json list = nlohmann::json::array();
  std::sort(files.begin(), files.end(), [](const auto &a, const auto &b) { return a.relative < b.relative; });
  for (const CopiedFile &f : files) {
    summary.files += 1;
    summary.bytes += f.bytes;
    list.push_back({{"path", (fs::path(kDataFolder) / f.relative).string()},
                    {"bytes", f.bytes},
                    {"sha256", to_hex(ByteView(f.sha256.data(), f.sha256.size()))}});
  }
  nlohmann::json manifest = {
      {"format", kFormat},
      {"formatVersion", kBackupFormatVersion},
      {"serverVersion", options.server_version},
      {"createdAt", iso8601_now()},
      {"source", data.string()},
      {"groups", summary.groups},
      {"counts",
       {{"groups", summary.groups.size()},
        {"documents", summary.documents},
        {"files", summary.files},
        {"bytes", summary.bytes}}},
      {"files", std::move(list)},
  };
  const std::string text = manifest.dump(1) + "\n";
  GM_TRY(storage::write_new_file(temp.path / kManifest, as_bytes(text), 0600));
  GM_TRY(publish(temp, out));
  if (options.verify) {
    GM_ASSIGN_OR_RETURN(RestoreSummary checked, check_backup(out));
    summary.problems = std::move(checked.problems);
  }
  return summary;
}

Result<RestoreSummary> check_backup(const fs::path &backup_dir) {
  const fs::path backup = absolute_path(backup_dir);
  GM_ASSIGN_OR_RETURN(Manifest m, read_manifest(backup));
  RestoreSummary summary;
  GM_TRY(check_and_copy(backup, m, nullptr, summary));
  GM_TRY(check_databases(backup, m));
  summary.problems = check_documents(backup, m.files, kDataFolder);
  return summary;
}

Result<RestoreSummary> restore_backup(const RestoreOptions &options) {
  const fs::path backup = absolute_path(options.backup);
  const fs::path target = absolute_path(options.data_dir);
  GM_TRY(require_empty_target(target, "data folder"));
  if (is_within(target, backup) || is_within(backup, target)) {
    return error("the data folder " + target.string() + " must lie outside the backup " + backup.string());
  }
  GM_ASSIGN_OR_RETURN(Manifest m, read_manifest(backup));
  GM_TRY(storage::create_directories_durably(target.parent_path()));
  TempFolder temp{temp_beside(target, "restore")};
  GM_TRY(storage::make_private_folders(temp.path));
  RestoreSummary summary;
  summary.data_dir = target;
  GM_TRY(check_and_copy(backup, m, &temp.path, summary));
  // Checked in the copy: the manifest's paths without their data/.
  std::vector<ManifestEntry> restored = m.files;
  for (auto &f : restored) f.path = fs::path(f.path).lexically_relative(kDataFolder).string();
  for (const auto &f : restored) {
    if (f.path.ends_with(".db")) GM_TRY(sqlite_check(temp.path / f.path));
  }
  summary.problems = check_documents(temp.path, restored, "");
  GM_TRY(publish(temp, target));
  return summary;
}

}  // namespace gm::cli
