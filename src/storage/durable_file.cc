#include "storage/durable_file.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "util/hex.h"

namespace gm::storage {
namespace fs = std::filesystem;

namespace {

// A file descriptor of `env`, closed on scope exit.
class Fd {
 public:
  Fd(Env& env, int fd) : env_(env), fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) env_.close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error (close can report a delayed write error).
  int close() {
    int r = env_.close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  Env& env_;
  int fd_;
};

Status write_all(Env& env, int fd, ByteView bytes, const fs::path& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = env.write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("cannot write", path, errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Writes a fresh temp file for `path` in `temp_dir`, or beside `path` when that is
// empty (fsynced when `sync`).
// A temp file written, and its inode (0 if unknown).
struct Temp {
  fs::path path;
  ino_t ino = 0;
};

Result<Temp> write_temp(Env& env, const fs::path& path, ByteView bytes, unsigned mode, const fs::path& temp_dir,
                        bool sync = true) {
  fs::path temp = (temp_dir.empty() ? path.parent_path() : temp_dir) /
                  (std::string(kTempPrefix) + path.filename().string() + "-" + random_suffix());
  Fd fd(env, env.open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (fd.get() < 0) return errno_error("cannot create", temp, errno);
  struct stat info {};
  const ino_t ino = env.fstat(fd.get(), &info) == 0 ? info.st_ino : 0;
  Status st = write_all(env, fd.get(), bytes, temp);
  if (st.ok() && sync && env.fsync(fd.get()) != 0) st = errno_error("cannot fsync", temp, errno);
  if (st.ok() && fd.close() != 0) st = errno_error("cannot close", temp, errno);
  if (!st.ok()) {
    env.unlink(temp.c_str());
    return st.error();
  }
  return Temp{std::move(temp), ino};
}

// Whether nothing is at `path` (an lstat error other than ENOENT is not known absent).
bool known_absent(Env& env, const fs::path& path) {
  struct stat st {};
  return env.lstat(path.c_str(), &st) != 0 && errno == ENOENT;
}

// After a failed flush: `path` was free before, and if it still holds the file put there
// (inode `ino`), that file may not be durable and is taken away again, so that nobody
// reads it next. Anything else at `path` stays.
void take_back(Env& env, const fs::path& path, bool was_free, ino_t ino) {
  struct stat st {};
  if (was_free && ino != 0 && env.lstat(path.c_str(), &st) == 0 && st.st_ino == ino) env.unlink(path.c_str());
}

}  // namespace

Error errno_error(std::string_view what, const fs::path& path, int err) {
  return error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
               std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

std::string random_suffix() {
  std::array<uint8_t, 16> r{};
  if (RAND_bytes(r.data(), static_cast<int>(r.size())) != 1) std::abort();
  return to_hex(ByteView(r.data(), r.size()));
}

Status sync_directory(Env& env, const fs::path& dir) {
  Fd fd(env, env.open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return errno_error("cannot open folder", dir, errno);
  if (env.fsync(fd.get()) != 0) {
    // Some filesystems (network and FUSE ones) cannot flush a folder: their renames are
    // as durable as they make them. Said once; refusing every write would lose more.
    if (errno == EINVAL || errno == ENOTSUP) {
      static std::atomic<bool> said{false};
      if (!said.exchange(true)) {
        std::fprintf(stderr, "warning: the filesystem of %s cannot flush folders (%s); new files are as durable "
                     "as it makes them\n", dir.c_str(), std::strerror(errno));
      }
      return Status::Ok();
    }
    return errno_error("cannot fsync folder", dir, errno);
  }
  return Status::Ok();
}

Status sync_filesystem(Env& env, const fs::path& dir) {
  Fd fd(env, env.open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return errno_error("cannot open folder", dir, errno);
  if (env.syncfs(fd.get()) != 0) return errno_error("cannot flush the filesystem of", dir, errno);
  return Status::Ok();
}

Status write_file_durably(Env& env, const fs::path& path, ByteView bytes, unsigned mode, const fs::path& temp_dir) {
  GM_ASSIGN_OR_RETURN(Temp temp, write_temp(env, path, bytes, mode, temp_dir));
  const bool was_free = known_absent(env, path);
  if (env.rename(temp.path.c_str(), path.c_str()) != 0) {
    int err = errno;
    env.unlink(temp.path.c_str());
    return errno_error("cannot rename " + temp.path.string() + " to", path, err);
  }
  Status synced = sync_directory(env, path.parent_path());
  if (!synced) take_back(env, path, was_free, temp.ino);
  return synced;
}

Result<bool> create_file_durably(Env& env, const fs::path& path, ByteView bytes, unsigned mode,
                                 const fs::path& temp_dir) {
  GM_ASSIGN_OR_RETURN(Temp temp, write_temp(env, path, bytes, mode, temp_dir));
  int r = env.link(temp.path.c_str(), path.c_str());
  int err = errno;
  env.unlink(temp.path.c_str());
  if (r != 0) {
    if (err == EEXIST) return false;
    return errno_error("cannot link " + temp.path.string() + " to", path, err);
  }
  if (Status synced = sync_directory(env, path.parent_path()); !synced) {
    take_back(env, path, /*was_free=*/true, temp.ino);  // link() fails on a taken place
    return synced.error();
  }
  return true;
}

Status remove_tree(Env& env, const fs::path& path) {
  struct stat st {};
  if (env.lstat(path.c_str(), &st) != 0) return errno == ENOENT ? Status::Ok() : errno_error("cannot inspect", path, errno);
  if (S_ISDIR(st.st_mode)) {
    std::vector<Env::Entry> entries;
    if (env.list(path.c_str(), entries) != 0) return errno_error("cannot list folder", path, errno);
    for (const Env::Entry& e : entries) GM_TRY(remove_tree(env, path / e.name));
    if (env.rmdir(path.c_str()) != 0 && errno != ENOENT) return errno_error("cannot remove folder", path, errno);
  } else if (env.unlink(path.c_str()) != 0 && errno != ENOENT) {
    return errno_error("cannot remove", path, errno);
  }
  return Status::Ok();
}

namespace {

// Creates `dir` and every missing folder above it, mode 0700 (the data is private),
// fsyncing each parent that gained an entry.
Status make_directories(Env& env, const fs::path& dir) {
  // Collect the missing folders, deepest first, stopping at the first existing one.
  std::vector<fs::path> missing;
  fs::path p = dir;
  while (true) {
    struct stat st {};
    if (env.stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return error(p.string() + " exists but is not a folder");
      break;
    }
    if (errno != ENOENT) return errno_error("cannot inspect", p, errno);
    missing.push_back(p);
    fs::path parent = p.parent_path();
    if (parent == p || parent.empty()) break;
    p = parent;
  }
  // A folder made here whose entry could not be flushed is removed again (deepest
  // first): left in place, the next call would find it and never flush it, and files
  // made durable inside it would go with it at a power loss.
  std::vector<fs::path> made;
  auto fail = [&](Error e) {
    for (auto it = made.rbegin(); it != made.rend(); ++it) env.rmdir(it->c_str());
    return e;
  };
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (env.mkdir(it->c_str(), 0700) == 0) {
      made.push_back(*it);
    } else {
      const int err = errno;
      // Created meanwhile by someone else is fine, if it is a folder.
      struct stat st {};
      if (err != EEXIST || env.stat(it->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return fail(errno_error("cannot create folder", *it, err));
      }
    }
    fs::path parent = it->parent_path();
    if (Status s = sync_directory(env, parent.empty() ? fs::path(".") : parent); !s) return fail(s.error());
  }
  return Status::Ok();
}

}  // namespace

Status create_directories_durably(Env& env, const fs::path& dir) { return make_directories(env, dir); }

PendingFile& PendingFile::operator=(PendingFile&& other) noexcept {
  if (this != &other) {
    discard();
    env_ = std::exchange(other.env_, nullptr);
    ino_ = std::exchange(other.ino_, 0);
    temp_ = std::exchange(other.temp_, {});
    path_ = std::exchange(other.path_, {});
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void PendingFile::discard() {
  if (!temp_.empty()) env_->unlink(temp_.c_str());
  temp_.clear();
}

Result<PendingFile> DurableBatch::prepare(const fs::path& path, ByteView bytes, unsigned mode) const {
  PendingFile file;
  file.env_ = &env_;
  file.path_ = path;
  file.size_ = bytes.size();
  {
    // Another caller that finds a folder this one is creating waits until its entry is
    // durable; the common case (every folder there) is one stat.
    std::lock_guard lock(folders_mutex_);
    GM_TRY(make_directories(env_, path.parent_path()));
  }
  GM_ASSIGN_OR_RETURN(Temp temp, write_temp(env_, path, bytes, mode, temp_dir_, false));
  file.temp_ = std::move(temp.path);
  file.ino_ = temp.ino;
  return file;
}

Status DurableBatch::make_folders(const fs::path& dir) const {
  std::lock_guard lock(folders_mutex_);
  return make_directories(env_, dir);
}

Status DurableBatch::add(const fs::path& path, ByteView bytes, unsigned mode) {
  GM_ASSIGN_OR_RETURN(PendingFile file, prepare(path, bytes, mode));
  add(std::move(file));
  return Status::Ok();
}

namespace {

Status sync_data(Env& env, const fs::path& path) {
  Fd fd(env, env.open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno_error("cannot open", path, errno);
  if (env.fdatasync(fd.get()) != 0) return errno_error("cannot flush", path, errno);
  return Status::Ok();
}

}  // namespace

Status DurableBatch::commit(std::vector<PendingFile>& files) {
  std::vector<PendingFile> batch = std::move(files);  // dropped (temps deleted) on return
  files.clear();
  if (batch.empty()) return Status::Ok();
  Env& env = *batch.front().env_;
  for (const PendingFile& f : batch) GM_TRY(sync_data(env, f.temp_));
  std::vector<fs::path> folders;  // that gained an entry
  std::vector<std::pair<fs::path, ino_t>> placed;  // files renamed into free places
  Status status = Status::Ok();
  for (PendingFile& f : batch) {
    const bool was_free = known_absent(env, f.path_);
    if (env.rename(f.temp_.c_str(), f.path_.c_str()) != 0) {
      status = errno_error("cannot rename " + f.temp_.string() + " to", f.path_, errno);
      break;
    }
    f.temp_.clear();  // published
    if (was_free) placed.emplace_back(f.path_, f.ino_);
    if (std::find(folders.begin(), folders.end(), f.path_.parent_path()) == folders.end()) {
      folders.push_back(f.path_.parent_path());
    }
  }
  for (const fs::path& folder : folders) {
    if (!status) break;
    status = sync_directory(env, folder);
  }
  if (status) return status;
  // Published but not known to be durable: taken away again, so that nobody who reads
  // the folder next (the caller reloads from it) serves a change that a power loss
  // could still take. A file that replaced one of the same name stays: names are
  // content hashes, so it holds what the old one held.
  for (const auto& [path, ino] : placed) take_back(env, path, /*was_free=*/true, ino);
  return status;
}

Result<std::optional<Bytes>> read_file(Env& env, const fs::path& path) {
  Fd fd(env, env.open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<Bytes>();
    if (errno == ELOOP) return error(path.string() + " is a symbolic link, not a regular file");
    return errno_error("cannot open", path, errno);
  }
  struct stat st {};
  if (env.fstat(fd.get(), &st) != 0) return errno_error("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) return error(path.string() + " is not a regular file");
  // Read straight into a buffer of the file's size; keep going if it grew meanwhile.
  Bytes out(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (true) {
    if (done == out.size()) out.resize(out.size() + 65536);
    ssize_t n = env.read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("cannot read", path, errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return std::optional<Bytes>(std::move(out));
}

}  // namespace gm::storage
