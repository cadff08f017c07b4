// The seam between storage and the operating system (as LevelDB's Env): every open,
// read, write, flush, rename, link, unlink, mkdir, rmdir and folder listing the stores
// do goes through one Env, so that tests can make any of them fail, or stop the
// "process" at any of them and throw away what the disk had not made durable
// (fault_env.h).
//
// Usage:
//   Env& env = Env::posix();                      // the real thing; the default everywhere
//   StoreOptions opts{.env = &fault_env};          // a store whose every call a test controls
//
// The calls mirror their POSIX namesakes: a result of -1 means failure, with errno
// set. Callers keep their own errno logic (ENOENT is absence, EEXIST a lost race).
// An Env is used from many threads at once; implementations are thread-safe.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace gm::storage {

class Env {
 public:
  virtual ~Env() = default;
  // The operating system itself.
  static Env& posix();

  virtual int open(const char* path, int flags, unsigned mode = 0);
  virtual ssize_t read(int fd, void* buf, size_t n);
  virtual ssize_t write(int fd, const void* buf, size_t n);
  virtual int fsync(int fd);
  virtual int fdatasync(int fd);
  // Flushes the whole filesystem `fd` is on (syncfs(2)).
  virtual int syncfs(int fd);
  virtual int fstat(int fd, struct stat* st);
  virtual int close(int fd);
  virtual int stat(const char* path, struct stat* st);
  virtual int lstat(const char* path, struct stat* st);
  virtual int rename(const char* from, const char* to);
  virtual int link(const char* from, const char* to);
  virtual int unlink(const char* path);
  virtual int mkdir(const char* path, unsigned mode);
  virtual int rmdir(const char* path);

  // One entry of a folder, typed as lstat sees it (a symbolic link is kOther).
  struct Entry {
    enum Type { kFile, kFolder, kOther };
    std::string name;
    Type type = kOther;
  };
  // The entries of `dir` (without "." and ".."), in no particular order.
  virtual int list(const char* dir, std::vector<Entry>& out);
};

}  // namespace gm::storage
