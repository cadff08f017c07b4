#include "storage/fault_env.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>

namespace gm::storage {
namespace fs = std::filesystem;

namespace {

std::optional<std::string> content_of(const char* path) {
  struct stat st {};
  if (::lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void put_back(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

// Sets errno and returns -1: how a failing call ends.
int failed(int err) {
  errno = err;
  return -1;
}

}  // namespace

uint64_t FaultEnv::steps() const {
  std::lock_guard lock(mutex_);
  return steps_;
}

std::vector<std::string> FaultEnv::log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

void FaultEnv::fail_at(uint64_t step, int err) {
  std::lock_guard lock(mutex_);
  fail_at_[step] = err;
}

void FaultEnv::fail_from(uint64_t step, int err) {
  std::lock_guard lock(mutex_);
  fail_from_ = {step, err};
}

void FaultEnv::short_write_at(uint64_t step) {
  std::lock_guard lock(mutex_);
  short_write_at_ = step;
}

void FaultEnv::crash_at(uint64_t step) {
  std::lock_guard lock(mutex_);
  crash_at_ = step;
}

void FaultEnv::read_error(int err) {
  std::lock_guard lock(mutex_);
  read_error_ = err;
}

bool FaultEnv::crashed() const {
  std::lock_guard lock(mutex_);
  return crashed_;
}

void FaultEnv::heal() {
  std::lock_guard lock(mutex_);
  fail_at_.clear();
  fail_from_.reset();
  short_write_at_.reset();
  crash_at_.reset();
  read_error_ = 0;
  crashed_ = false;
}

int FaultEnv::step(const std::string& what, bool frees) {
  ++steps_;
  log_.push_back(std::to_string(steps_) + " " + what);
  short_write_ = false;
  if (crashed_ || (crash_at_ && steps_ >= *crash_at_)) {
    crashed_ = true;
    return EIO;
  }
  if (auto it = fail_at_.find(steps_); it != fail_at_.end()) return it->second;
  // A full disk still lets files go (that is how room is made).
  if (fail_from_ && steps_ >= fail_from_->first && !(frees && fail_from_->second == ENOSPC)) return fail_from_->second;
  short_write_ = short_write_at_ == steps_;
  return 0;
}

int FaultEnv::read_fault() const { return crashed_ ? EIO : read_error_; }

bool FaultEnv::tracked(const std::string& path) const {
  const fs::path relative = fs::path(path).lexically_relative(dir_);
  return !relative.empty() && *relative.begin() != "..";
}

std::optional<std::string> FaultEnv::durable_content(const char* path) const {
  struct stat st {};
  std::optional<std::string> content = content_of(path);
  if (!content || ::lstat(path, &st) != 0) return content;
  // Written since its last flush: only what was flushed would come back.
  if (auto f = flushed_size_.find(st.st_ino); f != flushed_size_.end()) {
    content->resize(std::min<size_t>(content->size(), static_cast<size_t>(f->second)));
  }
  return content;
}

void FaultEnv::forget_data(const struct stat& st) {
  if (st.st_nlink <= 1) flushed_size_.erase(st.st_ino);
}

ino_t FaultEnv::folder_of(const std::string& path) const {
  struct stat st {};
  fs::path parent = fs::path(path).parent_path();
  return ::lstat(parent.empty() ? "." : parent.c_str(), &st) == 0 ? st.st_ino : 0;
}

int FaultEnv::open(const char* path, int flags, unsigned mode) {
  std::lock_guard lock(mutex_);
  const bool writes = (flags & (O_WRONLY | O_RDWR | O_CREAT)) != 0;
  if (int err = writes ? step(std::string("open ") + path) : read_fault()) return failed(err);
  struct stat before {};
  const bool existed = ::lstat(path, &before) == 0;
  const int fd = ::open(path, flags, mode);
  if (fd < 0) return -1;
  struct stat st {};
  ::fstat(fd, &st);
  open_[fd] = {st.st_ino, S_ISDIR(st.st_mode), writes};
  if (!existed && tracked(path)) pending_.push_back({Pending::kCreate, folder_of(path), "", path, st.st_ino, {}});
  return fd;
}

ssize_t FaultEnv::read(int fd, void* buf, size_t n) {
  std::lock_guard lock(mutex_);
  if (int err = read_fault()) return failed(err);
  return ::read(fd, buf, n);
}

ssize_t FaultEnv::write(int fd, const void* buf, size_t n) {
  std::lock_guard lock(mutex_);
  if (int err = step("write " + std::to_string(n) + " bytes")) return failed(err);
  struct stat st {};
  // The first write since the last flush: what is durable is the size until now.
  if (::fstat(fd, &st) == 0) flushed_size_.try_emplace(st.st_ino, st.st_size);
  return ::write(fd, buf, short_write_ && n > 1 ? n / 2 : n);
}

void FaultEnv::flushed(int fd) {
  auto it = open_.find(fd);
  if (it == open_.end()) return;
  if (!it->second.folder) {
    flushed_size_.erase(it->second.ino);
    return;
  }
  std::erase_if(pending_, [&](const Pending& p) { return p.folder == it->second.ino; });
}

int FaultEnv::fsync(int fd) {
  std::lock_guard lock(mutex_);
  if (int err = step("fsync")) return failed(err);
  if (::fsync(fd) != 0) return -1;
  flushed(fd);
  return 0;
}

int FaultEnv::fdatasync(int fd) {
  std::lock_guard lock(mutex_);
  if (int err = step("fdatasync")) return failed(err);
  if (::fdatasync(fd) != 0) return -1;
  flushed(fd);
  return 0;
}

int FaultEnv::syncfs(int fd) {
  std::lock_guard lock(mutex_);
  if (int err = step("syncfs")) return failed(err);
  if (::syncfs(fd) != 0) return -1;
  pending_.clear();
  flushed_size_.clear();
  return 0;
}

int FaultEnv::fstat(int fd, struct stat* st) {
  std::lock_guard lock(mutex_);
  if (int err = read_fault()) return failed(err);
  return ::fstat(fd, st);
}

int FaultEnv::close(int fd) {
  std::lock_guard lock(mutex_);
  auto it = open_.find(fd);
  const bool writable = it != open_.end() && it->second.writable;
  if (it != open_.end()) open_.erase(it);
  const int err = writable ? step("close") : 0;
  const int r = ::close(fd);
  return err ? failed(err) : r;
}

int FaultEnv::stat(const char* path, struct stat* st) {
  std::lock_guard lock(mutex_);
  if (int err = read_fault()) return failed(err);
  return ::stat(path, st);
}

int FaultEnv::lstat(const char* path, struct stat* st) {
  std::lock_guard lock(mutex_);
  if (int err = read_fault()) return failed(err);
  return ::lstat(path, st);
}

int FaultEnv::rename(const char* from, const char* to) {
  std::lock_guard lock(mutex_);
  if (int err = step(std::string("rename ") + from + " -> " + to)) return failed(err);
  struct stat st {}, old {};
  const bool known = ::lstat(from, &st) == 0;
  const bool replaces = ::lstat(to, &old) == 0;
  std::optional<std::string> replaced = durable_content(to);
  if (::rename(from, to) != 0) return -1;
  if (replaces) forget_data(old);
  if (known && tracked(to)) {
    pending_.push_back({Pending::kRename, folder_of(to), from, to, st.st_ino, std::move(replaced), replaces ? old.st_ino : 0});
  }
  return 0;
}

int FaultEnv::link(const char* from, const char* to) {
  std::lock_guard lock(mutex_);
  if (int err = step(std::string("link ") + from + " -> " + to)) return failed(err);
  if (::link(from, to) != 0) return -1;
  struct stat st {};
  if (tracked(to) && ::lstat(to, &st) == 0) pending_.push_back({Pending::kLink, folder_of(to), from, to, st.st_ino, {}});
  return 0;
}

int FaultEnv::unlink(const char* path) {
  std::lock_guard lock(mutex_);
  if (int err = step(std::string("unlink ") + path, /*frees=*/true)) return failed(err);
  struct stat st {};
  const bool known = ::lstat(path, &st) == 0;
  std::optional<std::string> content = durable_content(path);
  if (::unlink(path) != 0) return -1;
  if (known) forget_data(st);
  if (known && tracked(path)) pending_.push_back({Pending::kUnlink, folder_of(path), "", path, st.st_ino, std::move(content)});
  return 0;
}

int FaultEnv::mkdir(const char* path, unsigned mode) {
  std::lock_guard lock(mutex_);
  if (int err = step(std::string("mkdir ") + path)) return failed(err);
  if (::mkdir(path, mode) != 0) return -1;
  struct stat st {};
  if (tracked(path) && ::lstat(path, &st) == 0) pending_.push_back({Pending::kMkdir, folder_of(path), "", path, st.st_ino, {}});
  return 0;
}

int FaultEnv::rmdir(const char* path) {
  std::lock_guard lock(mutex_);
  if (int err = step(std::string("rmdir ") + path, /*frees=*/true)) return failed(err);
  if (::rmdir(path) != 0) return -1;
  if (tracked(path)) pending_.push_back({Pending::kRmdir, folder_of(path), "", path, 0, {}});
  return 0;
}

int FaultEnv::list(const char* dir, std::vector<Entry>& out) {
  {
    std::lock_guard lock(mutex_);
    if (int err = read_fault()) return failed(err);
  }
  return Env::list(dir, out);
}

void FaultEnv::undo(size_t i) {
  const Pending& p = pending_[i];
  struct stat st {};
  const bool there = ::lstat(p.to.c_str(), &st) == 0;
  const bool same = there && st.st_ino == p.ino;
  // A file put back is a new inode: older changes that name the old one at that path
  // mean the new one.
  auto put_back_at = [&](const std::string& path, const std::string& content, ino_t was) {
    put_back(path, content);
    struct stat now {};
    if (::lstat(path.c_str(), &now) != 0) return;
    for (size_t j = 0; j < i; ++j) {
      if (pending_[j].to == path && pending_[j].ino == was) pending_[j].ino = now.st_ino;
    }
  };
  switch (p.kind) {
    case Pending::kCreate:
    case Pending::kLink:
      if (same) ::unlink(p.to.c_str());
      break;
    case Pending::kMkdir:
      if (same) {
        std::error_code ec;
        fs::remove_all(p.to, ec);
      }
      break;
    case Pending::kRename:
      if (same && ::rename(p.to.c_str(), p.from.c_str()) == 0 && p.saved) put_back_at(p.to, *p.saved, p.replaced);
      break;
    case Pending::kUnlink:
      if (!there && p.saved) put_back_at(p.to, *p.saved, p.ino);
      break;
    case Pending::kRmdir:
      if (!there) ::mkdir(p.to.c_str(), 0700);
      break;
  }
}

void FaultEnv::lose_unsynced() {
  std::lock_guard lock(mutex_);
  // Data first, on the files where they are now (a rename undone keeps the inode).
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (auto f = flushed_size_.find(st.st_ino); f != flushed_size_.end()) {
      if (::truncate(it->path().c_str(), f->second) != 0) continue;
    }
  }
  for (size_t i = pending_.size(); i-- > 0;) undo(i);
  pending_.clear();
  flushed_size_.clear();
}

}  // namespace gm::storage
