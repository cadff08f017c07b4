// Backups of a data folder, taken while the server runs, and their restore
// (`groundmist-sync backup` / `restore`, cli/backup_command.h; README "Backups").
//
// Usage:
//   GM_ASSIGN_OR_RETURN(BackupSummary s, write_backup({.data_dir = ".data", .out = "/mnt/b/1"}));
//   GM_ASSIGN_OR_RETURN(RestoreSummary r, restore_backup({.backup = "/mnt/b/1", .data_dir = "/srv/new"}));
//
// A backup is a folder:
//   OUT/manifest.json   what the backup holds (below)
//   OUT/data/           the data folder: its groups' stores, and .groundmist/ with
//                       server.db, secret.key (0600, if the key lives in a file) and
//                       quarantine/ (files the server set aside, kept for the owner)
// Left out: temp files and leftovers (names starting with '.' inside the stores),
// server.lock, SQLite's -wal/-shm/-journal files (the database is copied whole), and
// .groundmist/verified/ (a cache: a restored server checks each snapshot again once).
//
// How: the stores are copied file by file while the server may compact them
// (storage/backup_copy.h says why no change durable before the backup began can be missed);
// each SQLite database (`*.db` in .groundmist/) with SQLite's online backup API, one read
// transaction, so a consistent state of it and never a torn WAL; the rest as files.
// Everything is written to a temp folder beside OUT (`.<name>.backup-tmp-<random>`),
// flushed (syncfs), then renamed to OUT and the rename flushed: OUT is either absent or
// complete. OUT must not exist or be an empty folder, and must lie outside the data folder.
//
// manifest.json (format version 1):
//   {"format": "groundmist-sync-backup", "formatVersion": 1, "serverVersion": "0.1.0",
//    "createdAt": "2026-05-01T10:00:00Z", "source": "/abs/data/folder",
//    "groups": ["xyz.groundmist.library"],
//    "counts": {"groups": 1, "documents": 12, "files": 40, "bytes": 123456},
//    "files": [{"path": "data/xyz/groundmist/library/2J/…/snapshot/…", "bytes": 812,
//               "sha256": "<hex>"}, …]}
// Paths are relative to the backup folder, sorted; "documents" counts document folders.
//
// Restore: DIR must be absent or an empty folder. Every file of the manifest is read,
// checked against its size and SHA-256 and copied into a temp folder beside DIR; a file
// missing, changed, or present but not in the manifest refuses the restore, naming it. The
// copy is flushed, checked (each document's files load as Automerge chunks, every SQLite
// database passes its integrity check), then renamed to DIR.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "storage/backup_copy.h"
#include "util/result.h"

namespace gm::cli {

inline constexpr int kBackupFormatVersion = 1;

struct BackupOptions {
  std::filesystem::path data_dir;
  std::filesystem::path out;
  bool verify = false;             // check the finished backup as restore would
  std::string server_version;      // for the manifest
  storage::StoreCopyOptions copy;  // tests: races between listing and reading
};

// A document whose files do not load, and why.
struct DocumentProblem {
  std::string document;  // path of its folder, relative to the data folder
  std::string reason;
};

struct BackupSummary {
  std::filesystem::path out;
  std::vector<std::string> groups;
  size_t documents = 0;
  size_t files = 0;
  uint64_t bytes = 0;
  size_t repeated_passes = 0;
  bool secret_key = false;  // .groundmist/secret.key was copied
  bool database = false;    // .groundmist/server.db was copied
  std::vector<std::string> skipped;
  std::vector<DocumentProblem> problems;  // with verify
};

Result<BackupSummary> write_backup(const BackupOptions &options);

struct RestoreOptions {
  std::filesystem::path backup;
  std::filesystem::path data_dir;
};

struct RestoreSummary {
  std::filesystem::path data_dir;
  std::vector<std::string> groups;
  std::string created_at, server_version;
  size_t documents = 0;
  size_t files = 0;
  uint64_t bytes = 0;
  std::vector<DocumentProblem> problems;  // documents that did not load (the server sets them aside)
};

Result<RestoreSummary> restore_backup(const RestoreOptions &options);

// Checks a backup folder against its manifest without writing anything: every file there,
// unchanged, nothing else. Returns the summary restore would print.
Result<RestoreSummary> check_backup(const std::filesystem::path &backup);

}  // namespace gm::cli
