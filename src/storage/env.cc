#include "storage/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gm::storage {

Env& Env::posix() {
  static Env env;
  return env;
}

int Env::open(const char* path, int flags, unsigned mode) { return ::open(path, flags, mode); }
ssize_t Env::read(int fd, void* buf, size_t n) { return ::read(fd, buf, n); }
ssize_t Env::write(int fd, const void* buf, size_t n) { return ::write(fd, buf, n); }
int Env::fsync(int fd) { return ::fsync(fd); }
int Env::fdatasync(int fd) { return ::fdatasync(fd); }
int Env::syncfs(int fd) { return ::syncfs(fd); }
int Env::fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
int Env::close(int fd) { return ::close(fd); }
int Env::stat(const char* path, struct stat* st) { return ::stat(path, st); }
int Env::lstat(const char* path, struct stat* st) { return ::lstat(path, st); }
int Env::rename(const char* from, const char* to) { return ::rename(from, to); }
int Env::link(const char* from, const char* to) { return ::link(from, to); }
int Env::unlink(const char* path) { return ::unlink(path); }
int Env::mkdir(const char* path, unsigned mode) { return ::mkdir(path, mode); }
int Env::rmdir(const char* path) { return ::rmdir(path); }

int Env::list(const char* dir, std::vector<Entry>& out) {
  out.clear();
  const int fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  while (true) {
    errno = 0;
    const dirent* e = ::readdir(d);
    if (e == nullptr) break;
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    Entry entry{e->d_name, Entry::kOther};
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {  // some filesystems do not say: ask
      struct stat st {};
      if (::fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        type = S_ISREG(st.st_mode) ? DT_REG : S_ISDIR(st.st_mode) ? DT_DIR : DT_UNKNOWN;
      }
    }
    if (type == DT_REG) entry.type = Entry::kFile;
    if (type == DT_DIR) entry.type = Entry::kFolder;
    out.push_back(std::move(entry));
  }
  const int err = errno;
  ::closedir(d);
  errno = err;
  return err == 0 ? 0 : -1;
}

}  // namespace gm::storage
