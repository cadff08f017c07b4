// Crash-safe file primitives (DESIGN.md "Data folder"): a file written with
// write_file_durably() is either absent or complete after a crash, never partial.
//
// Usage:
//   GM_TRY(gm::storage::create_directories_durably(base / "2J" / "vEZq…" / "snapshot"));
//   GM_TRY(gm::storage::write_file_durably(path, bytes));        // temp, fsync, rename, fsync dir
//   GM_ASSIGN_OR_RETURN(std::optional<gm::Bytes> b, gm::storage::read_file(path));  // nullopt = absent
//
// Sequence of write_file_durably(folder/name): write `<temp folder>/.tmp-<name>-<random>`
// (O_EXCL, mode 0600), fsync it, rename it over `folder/name`, fsync `folder`. The temp
// folder is `folder` itself unless the caller names one (on the same filesystem):
// stores keep their temp files out of the folders another program reads whole (npm's
// NodeFS adapter reads every file in a document's folder, a half-written temp too).
// Temp files start with kTempPrefix so leftovers can be recognised and deleted. Folders
// created on the way are fsynced into their parents so a new file's path survives too.
//
// Every system call goes through an Env (env.h); the overloads without one use the
// operating system's.
#pragma once

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/env.h"
#include "util/bytes.h"
#include "util/result.h"

namespace gm::storage {

inline constexpr std::string_view kTempPrefix = ".tmp-";

// Writes `bytes` to `path` atomically and durably; the folder must exist. `mode` is the
// new file's permission bits (before umask); `temp_dir` where the temp file is written
// (empty: beside `path`).
Status write_file_durably(Env& env, const std::filesystem::path& path, ByteView bytes, unsigned mode = 0600,
                          const std::filesystem::path& temp_dir = {});

// Like write_file_durably, but fails (returns false) instead of replacing when `path`
// already exists: the first writer wins (link(2) instead of rename(2)).
Result<bool> create_file_durably(Env& env, const std::filesystem::path& path, ByteView bytes, unsigned mode = 0600,
                                 const std::filesystem::path& temp_dir = {});

// Creates `dir` and every missing folder above it (mode 0700), fsyncing each parent
// that gained an entry.
Status create_directories_durably(Env& env, const std::filesystem::path& dir);

// fsync of a folder, so renames/unlinks/creations inside it are durable.
Status sync_directory(Env& env, const std::filesystem::path& dir);

// syncfs of the filesystem `dir` is on: everything written there so far is durable
// (what a crashed run left unflushed, whoever wrote it).
Status sync_filesystem(Env& env, const std::filesystem::path& dir);

// Deletes `path` and, if it is a folder, everything in it (symbolic links are removed,
// not followed). Absent is not an error. Nothing is flushed.
Status remove_tree(Env& env, const std::filesystem::path& path);

inline Status write_file_durably(const std::filesystem::path& path, ByteView bytes, unsigned mode = 0600,
                                 const std::filesystem::path& temp_dir = {}) {
  return write_file_durably(Env::posix(), path, bytes, mode, temp_dir);
}
inline Result<bool> create_file_durably(const std::filesystem::path& path, ByteView bytes, unsigned mode = 0600,
                                        const std::filesystem::path& temp_dir = {}) {
  return create_file_durably(Env::posix(), path, bytes, mode, temp_dir);
}
inline Status create_directories_durably(const std::filesystem::path& dir) {
  return create_directories_durably(Env::posix(), dir);
}
inline Status sync_directory(const std::filesystem::path& dir) { return sync_directory(Env::posix(), dir); }

// A value written beside its place (a temp file named with kTempPrefix) but neither
// durable nor visible yet: what DurableBatch::prepare makes, on any thread, for
// DurableBatch::commit to publish. Deleted if dropped uncommitted.
class PendingFile {
 public:
  PendingFile() = default;
  PendingFile(PendingFile&& other) noexcept { *this = std::move(other); }
  PendingFile& operator=(PendingFile&& other) noexcept;
  ~PendingFile() { discard(); }
  const std::filesystem::path& path() const { return path_; }
  size_t size() const { return size_; }

 private:
  friend class DurableBatch;
  void discard();
  Env* env_ = nullptr;
  ino_t ino_ = 0;  // of the temp file (0 if unknown)
  std::filesystem::path temp_, path_;
  size_t size_ = 0;
};

// Group commit: many files made durable and visible together. prepare() creates the
// missing folders of a path durably (each flushed into its parent, one caller at a
// time, so that no file is published into a folder whose own entry may not be on disk
// yet) and writes a temp file for it (in the batch's temp folder, or beside the path)
// without flushing it; commit() flushes each temp's data (fdatasync), renames every
// temp over its path, and flushes each target folder once, so the cost is the batch's
// own files, not the whole filesystem's dirty data. After a crash each path holds its
// old content or the new one, never a part (leftover temps are named with
// kTempPrefix). Nothing is visible at its path before commit().
//
// Threads: prepare() and the static commit() may run on any thread (the server writes
// and flushes on workers); add(), take() and the member commit() belong to one thread.
class DurableBatch {
 public:
  // Temp files go to `temp_dir` (on the same filesystem as the paths), or beside each
  // path when it is empty.
  explicit DurableBatch(std::filesystem::path temp_dir = {}, Env& env = Env::posix())
      : env_(env), temp_dir_(std::move(temp_dir)) {}
  DurableBatch(const DurableBatch&) = delete;
  DurableBatch& operator=(const DurableBatch&) = delete;

  Result<PendingFile> prepare(const std::filesystem::path& path, ByteView bytes, unsigned mode = 0600) const;
  void add(PendingFile file) { pending_.push_back(std::move(file)); }
  Status add(const std::filesystem::path& path, ByteView bytes, unsigned mode = 0600);
  // Publishes `files` durably (through the Env they were prepared with: one for all).
  // On error nothing new stays visible: temps are deleted, and files already renamed
  // into place where there was none are removed again (they may not be durable).
  static Status commit(std::vector<PendingFile>& files);
  Status commit() {
    std::vector<PendingFile> files = std::exchange(pending_, {});
    return commit(files);
  }
  bool empty() const { return pending_.empty(); }
  // Creates `dir` and the folders above it durably, as prepare() does (one caller at a
  // time: a folder is durable before anyone uses it).
  Status make_folders(const std::filesystem::path& dir) const;

 private:
  Env& env_;
  std::filesystem::path temp_dir_;
  std::vector<PendingFile> pending_;
  mutable std::mutex folders_mutex_;  // prepare(): a folder is made durable before anyone uses it
};

// Reads a regular file. nullopt if it does not exist; an error if it exists but cannot
// be read (permissions, I/O error, not a regular file).
Result<std::optional<Bytes>> read_file(Env& env, const std::filesystem::path& path);
inline Result<std::optional<Bytes>> read_file(const std::filesystem::path& path) {
  return read_file(Env::posix(), path);
}

// `<what> <path>: <strerror(errno)>`.
Error errno_error(std::string_view what, const std::filesystem::path& path, int err);

// 16 random bytes as 32 hex digits, for unique temp names.
std::string random_suffix();

}  // namespace gm::storage
