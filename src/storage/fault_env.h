// An Env for tests (env.h) that counts the steps storage takes that change the disk,
// makes any of them fail, or stops there as a crash would and then undoes what the disk
// had not made durable, as a power loss would.
//
// Usage:
//   FaultEnv env(dir);                        // over the real files under `dir`
//   StoreOptions o{.env = &env};
//   const uint64_t from = env.steps();
//   env.fail_at(from + 3, ENOSPC);            // the third step from now fails, once
//   env.fail_from(from + 1, EIO);             // every step from the next fails, until heal()
//                                             // (with ENOSPC, unlink and rmdir still work)
//   env.short_write_at(from + 2);             // the write at that step writes half
//   env.crash_at(from + 4);                   // that step and every call after fail: the process is gone
//   env.lose_unsynced();                      // a power loss: what was not durable is undone on disk
//   env.heal();                               // no more faults
//
// Steps are the calls that change the disk: open with O_CREAT or for writing, write,
// fsync, fdatasync, syncfs (which makes everything durable), close of a file opened for writing, rename, link, unlink, mkdir and
// rmdir. Reads (open for reading, read, stat, list) are not steps; read_error() makes
// them fail. A failing step does nothing and returns -1 with the errno asked for (a
// failing close still closes, as close(2) does).
//
// The crash model of lose_unsynced(): a file's data is durable up to its last fsync or
// fdatasync; a name made (create, link, mkdir, the destination of a rename) or taken
// away (unlink, rmdir) is durable once its folder is fsynced after it (a rename, both
// its ends, once the destination's folder is). What is not durable is undone, newest
// first: names come back or go, and every file written since its last flush is cut back
// to what was flushed (a new file never flushed is empty). Only what happens under `dir`
// is tracked.
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage/env.h"

namespace gm::storage {

class FaultEnv : public Env {
 public:
  explicit FaultEnv(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // Steps taken so far.
  uint64_t steps() const;
  // What each step was ("7 rename /a -> /b"), for messages.
  std::vector<std::string> log() const;
  void fail_at(uint64_t step, int err);
  void fail_from(uint64_t step, int err);
  void short_write_at(uint64_t step);
  void crash_at(uint64_t step);
  void read_error(int err);  // 0: reads work
  // Whether a crash point was reached.
  bool crashed() const;
  // Forgets every fault (and the crash); steps go on counting.
  void heal();
  // Undoes on disk what was not durable, then treats everything as durable.
  void lose_unsynced();

  int open(const char* path, int flags, unsigned mode) override;
  ssize_t read(int fd, void* buf, size_t n) override;
  ssize_t write(int fd, const void* buf, size_t n) override;
  int fsync(int fd) override;
  int fdatasync(int fd) override;
  int syncfs(int fd) override;
  int fstat(int fd, struct stat* st) override;
  int close(int fd) override;
  int stat(const char* path, struct stat* st) override;
  int lstat(const char* path, struct stat* st) override;
  int rename(const char* from, const char* to) override;
  int link(const char* from, const char* to) override;
  int unlink(const char* path) override;
  int mkdir(const char* path, unsigned mode) override;
  int rmdir(const char* path) override;
  int list(const char* dir, std::vector<Entry>& out) override;

 private:
  struct Open {
    ino_t ino = 0;
    bool folder = false;
    bool writable = false;
  };
  // A change of names not yet durable.
  struct Pending {
    enum Kind { kCreate, kLink, kMkdir, kRename, kUnlink, kRmdir } kind;
    ino_t folder;   // whose fsync makes it durable
    std::string from, to;
    ino_t ino = 0;  // of what was created or moved
    std::optional<std::string> saved;  // the durable content of the file removed or replaced
    ino_t replaced = 0;                // a rename: the inode it replaced at `to`
  };
  // Under mutex_: counts a step; 0 to go on, else the errno it fails with. A step that
  // `frees` space (unlink, rmdir) passes a full disk (fail_from with ENOSPC).
  int step(const std::string& what, bool frees = false);
  int read_fault() const;  // under mutex_
  bool tracked(const std::string& path) const;
  ino_t folder_of(const std::string& path) const;
  void flushed(int fd);
  void undo(size_t i);  // pending_[i]; may update older entries
  // The content of `path` that a power loss would leave (cut to its flushed size).
  std::optional<std::string> durable_content(const char* path) const;
  // A file's last name is gone: its inode may be reused.
  void forget_data(const struct stat& st);

  const std::filesystem::path dir_;
  mutable std::mutex mutex_;
  uint64_t steps_ = 0;
  std::vector<std::string> log_;
  std::map<uint64_t, int> fail_at_;
  std::optional<std::pair<uint64_t, int>> fail_from_;
  std::optional<uint64_t> short_write_at_, crash_at_;
  bool short_write_ = false;  // the current step writes half
  int read_error_ = 0;
  bool crashed_ = false;
  std::map<int, Open> open_;
  std::map<ino_t, off_t> flushed_size_;  // files written since their last flush → size then
  std::vector<Pending> pending_;
};

}  // namespace gm::storage
