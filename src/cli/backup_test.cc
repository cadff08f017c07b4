#include "cli/backup.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "storage/document_store.h"
#include "util/hex.h"

namespace gm::cli {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/gm-backup-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path &path() const { return path_; }

 private:
  fs::path path_;
};

// Spec vector a1: one change setting title = "hi".
const char *kChangeA1 =
    "856f4a83913f8185013400100123456789abcdef0123456789abcdef010100000006150734"
    "0142025602570270027f057469746c65017f01"
    "7f2668697f00";
constexpr const char *kDoc = "3Rvncn6vGfW9LAndSNbqedrx1V2g";

std::string slurp(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void exec(sqlite3 *db, const char *sql) {
  char *err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
}

// A data folder as a server leaves it: a group with one document, a WAL database held open
// (with rows still in its -wal), a secret key, a lock, a temp leftover.
struct DataFolder {
  TempDir root;
  fs::path data = root.path() / "data";
  sqlite3 *db = nullptr;
  DataFolder() {
    auto store = storage::DocumentStore::open(data / "xyz" / "groundmist" / "test").value();
    const Bytes change = *from_hex(kChangeA1);
    EXPECT_TRUE(store->save(storage::incremental_key(kDoc, change), change).ok());
    fs::create_directories(data / ".groundmist");
    EXPECT_TRUE(storage::write_new_file(data / ".groundmist" / "secret.key", Bytes(32, 7), 0600).ok());
    EXPECT_TRUE(storage::write_new_file(data / ".groundmist" / "server.lock", Bytes(), 0600).ok());
    EXPECT_TRUE(storage::write_new_file(data / ".groundmist" / "quarantine" / "x.20260101", Bytes(3, 1), 0600).ok());
    EXPECT_EQ(sqlite3_open((data / ".groundmist" / "server.db").c_str(), &db), SQLITE_OK);
    exec(db,
         "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE "
         "TABLE sessions (id TEXT);"
         "INSERT INTO sessions VALUES ('s1'), ('s2');");
  }
  ~DataFolder() { sqlite3_close(db); }
};

TEST(Backup, RoundTripKeepsDocumentsDatabaseAndKey) {
  DataFolder d;
  TempDir out_parent, restore_parent;
  const fs::path out = out_parent.path() / "b1";
  auto backup = write_backup({.data_dir = d.data, .out = out, .verify = true, .server_version = "test"});
  ASSERT_TRUE(backup.ok()) << backup.error().message;
  EXPECT_EQ(backup->groups, std::vector<std::string>{"xyz.groundmist.test"});
  EXPECT_EQ(backup->documents, 1u);
  EXPECT_TRUE(backup->database);
  EXPECT_TRUE(backup->secret_key);
  EXPECT_TRUE(backup->problems.empty());
  // Nothing left beside it, no lock, no WAL files, no temp folder.
  EXPECT_FALSE(fs::exists(out / "data" / ".groundmist" / "server.lock"));
  EXPECT_FALSE(fs::exists(out / "data" / ".groundmist" / "server.db-wal"));
  EXPECT_EQ(std::distance(fs::directory_iterator(out_parent.path()), fs::directory_iterator()), 1);
  struct stat st {};
  ASSERT_EQ(::stat((out / "data" / ".groundmist" / "secret.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const fs::path restored = restore_parent.path() / "new-data";
  auto r = restore_backup({.backup = out, .data_dir = restored});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->documents, 1u);
  EXPECT_TRUE(r->problems.empty());
  EXPECT_EQ(slurp(restored / ".groundmist" / "secret.key"), std::string(32, 7));
  EXPECT_TRUE(fs::exists(restored / ".groundmist" / "quarantine" / "x.20260101"));
  // The database holds the rows that were only in the live -wal.
  sqlite3 *db = nullptr;
  ASSERT_EQ(sqlite3_open((restored / ".groundmist" / "server.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt *stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM sessions", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 2);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  // The document, byte for byte, where the store expects it.
  auto store = storage::DocumentStore::open(restored / "xyz" / "groundmist" / "test").value();
  auto files = store->load_range({kDoc});
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ(files->front().second, *from_hex(kChangeA1));
}

TEST(Backup, RefusesANonEmptyOrInsideTarget) {
  DataFolder d;
  TempDir out;
  ASSERT_TRUE(storage::write_new_file(out.path() / "precious", Bytes(1, 1)).ok());
  auto r = write_backup({.data_dir = d.data, .out = out.path()});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not empty"), std::string::npos) << r.error().message;
  EXPECT_EQ(slurp(out.path() / "precious"), std::string(1, 1));
  auto inside = write_backup({.data_dir = d.data, .out = d.data / "backup"});
  ASSERT_FALSE(inside.ok());
  EXPECT_NE(inside.error().message.find("outside the data folder"), std::string::npos) << inside.error().message;
  // An empty folder is fine.
  TempDir empty;
  EXPECT_TRUE(write_backup({.data_dir = d.data, .out = empty.path()}).ok());
}

TEST(Restore, RefusesANonEmptyDataFolder) {
  DataFolder d;
  TempDir out_parent;
  ASSERT_TRUE(write_backup({.data_dir = d.data, .out = out_parent.path() / "b"}).ok());
  auto r = restore_backup({.backup = out_parent.path() / "b", .data_dir = d.data});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not empty"), std::string::npos) << r.error().message;
}

struct BackedUp {
  DataFolder d;
  TempDir parent, target_parent;
  fs::path out = parent.path() / "b";
  fs::path target = target_parent.path() / "restored";
  BackedUp() { EXPECT_TRUE(write_backup({.data_dir = d.data, .out = out}).ok()); }
  fs::path document_file() const {
    for (const auto &e : fs::recursive_directory_iterator(out / "data")) {
      if (e.path().parent_path().filename() == "incremental") return e.path();
    }
    return {};
  }
  Result<RestoreSummary> restore() { return restore_backup({.backup = out, .data_dir = target}); }
};

TEST(Restore, RefusesADamagedFileNamingIt) {
  BackedUp b;
  const fs::path file = b.document_file();
  ASSERT_FALSE(file.empty());
  std::string bytes = slurp(file);
  bytes[bytes.size() / 2] ^= 1;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  auto r = b.restore();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("backup damaged: " + file.string()), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(b.target));
  EXPECT_EQ(std::distance(fs::directory_iterator(b.target_parent.path()), fs::directory_iterator()),
            0);  // no temp left
  EXPECT_FALSE(check_backup(b.out).ok());
}

TEST(Restore, RefusesADamagedManifestEntry) {
  BackedUp b;
  auto manifest = nlohmann::json::parse(slurp(b.out / "manifest.json"));
  std::string &sha = manifest["files"][0]["sha256"].get_ref<std::string &>();
  sha[0] = sha[0] == '0' ? '1' : '0';
  const std::string path = manifest["files"][0]["path"];
  std::ofstream(b.out / "manifest.json", std::ios::trunc) << manifest.dump();
  auto r = b.restore();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find((b.out / path).string()), std::string::npos) << r.error().message;
}

TEST(Restore, RefusesMissingExtraFilesAndABrokenManifest) {
  {
    BackedUp b;
    fs::remove(b.document_file());
    auto r = b.restore();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("is missing"), std::string::npos) << r.error().message;
  }
  {
    BackedUp b;
    std::ofstream(b.out / "data" / "stray") << "x";
    auto r = b.restore();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("not in the manifest"), std::string::npos) << r.error().message;
  }
  {
    BackedUp b;
    std::ofstream(b.out / "manifest.json", std::ios::trunc) << "{\"format\": \"groundmist-sync-b";
    auto r = b.restore();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("manifest.json is not valid JSON"), std::string::npos) << r.error().message;
  }
  {
    BackedUp b;
    auto manifest = nlohmann::json::parse(slurp(b.out / "manifest.json"));
    manifest["files"][0]["path"] = "data/../../escape";
    std::ofstream(b.out / "manifest.json", std::ios::trunc) << manifest.dump();
    auto r = b.restore();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("bad path"), std::string::npos) << r.error().message;
  }
}

TEST(Restore, ReportsADocumentThatDoesNotLoad) {
  BackedUp b;
  // A snapshot that is not an Automerge chunk, listed in a manifest that agrees with it:
  // damage from the data folder itself, not from the backup.
  DataFolder &d = b.d;
  auto store = storage::DocumentStore::open(d.data / "xyz" / "groundmist" / "test").value();
  ASSERT_TRUE(store->save(storage::snapshot_key(kDoc, {"ab"}), Bytes(40, 9)).ok());
  TempDir parent;
  auto backup = write_backup({.data_dir = d.data, .out = parent.path() / "b", .verify = true});
  ASSERT_TRUE(backup.ok()) << backup.error().message;
  ASSERT_EQ(backup->problems.size(), 1u);
  EXPECT_NE(backup->problems[0].document.find(std::string(kDoc).substr(2)), std::string::npos);
  auto r = restore_backup({.backup = parent.path() / "b", .data_dir = b.target});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->problems.size(), 1u);
}

}  // namespace
}  // namespace gm::cli
