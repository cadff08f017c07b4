#include "storage/backup_copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "storage/durable_file.h"

namespace gm::storage {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kStorageIdShard = "st";
constexpr std::string_view kStorageIdRest = "orage-adapter-id";
constexpr std::string_view kIncremental = "incremental";
constexpr int kMaxDepth = 64;  // below the data folder; deeper is not a layout we know

// The linux_dirent64 records of one getdents64 buffer.
bool parse_dirents(const char* buf, size_t n, const char* dir, std::vector<Env::Entry>& out) {
  size_t pos = 0;
  while (pos < n) {
    struct Header {
      uint64_t ino;
      int64_t off;
      unsigned short reclen;
      unsigned char type;
    };
    Header h;
    std::memcpy(&h, buf + pos, sizeof h);
    if (h.reclen == 0 || pos + h.reclen > n) return false;
    const char* name = buf + pos + offsetof(Header, type) + 1;
    const std::string entry_name(name, ::strnlen(name, h.reclen - (offsetof(Header, type) + 1)));
    pos += h.reclen;
    if (entry_name == "." || entry_name == "..") continue;
    Env::Entry e;
    e.name = entry_name;
    unsigned char type = h.type;
    if (type == DT_UNKNOWN) {
      struct stat st {};
      const std::string path = std::string(dir) + "/" + entry_name;
      if (::lstat(path.c_str(), &st) != 0) continue;  // gone meanwhile
      type = S_ISREG(st.st_mode) ? DT_REG : S_ISDIR(st.st_mode) ? DT_DIR : DT_LNK;
    }
    e.type = type == DT_REG ? Env::Entry::kFile : type == DT_DIR ? Env::Entry::kFolder : Env::Entry::kOther;
    out.push_back(std::move(e));
  }
  return true;
}

// Every entry of an open folder, read from its start with `size`-byte calls. Sets
// *calls to the number of calls that returned entries.
int read_all(int fd, const char* dir, std::vector<char>& buf, std::vector<Env::Entry>& out, int* calls, size_t* first) {
  out.clear();
  *calls = 0;
  *first = 0;
  if (::lseek(fd, 0, SEEK_SET) != 0) return -1;
  for (;;) {
    const long n = ::syscall(SYS_getdents64, fd, buf.data(), buf.size());
    if (n < 0) return -1;
    if (n == 0) return 0;
    if (++*calls == 1) *first = static_cast<size_t>(n);
    if (!parse_dirents(buf.data(), static_cast<size_t>(n), dir, out)) {
      errno = EIO;
      return -1;
    }
  }
}

bool same_entries(std::vector<Env::Entry> a, std::vector<Env::Entry> b) {
  auto by_name = [](const Env::Entry& x, const Env::Entry& y) { return x.name < y.name; };
  std::sort(a.begin(), a.end(), by_name);
  std::sort(b.begin(), b.end(), by_name);
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const Env::Entry& x, const Env::Entry& y) { return x.name == y.name && x.type == y.type; });
}

class Copier {
 public:
  Copier(const fs::path& data_dir, const fs::path& out_dir, const StoreCopyOptions& options,
         std::vector<CopiedFile>& files)
      : data_(data_dir),
        out_(out_dir),
        options_(options),
        env_(options.env ? *options.env : Env::posix()),
        files_(files) {}

  Status run() {
    GM_TRY(copy_tree(fs::path(), 0, /*store_root=*/false));
    std::sort(stats_.groups.begin(), stats_.groups.end());
    return Status::Ok();
  }
  StoreCopyStats& stats() { return stats_; }

 private:
  int list(const fs::path& dir, std::vector<Env::Entry>& out) {
    return options_.list ? options_.list(dir.c_str(), out) : list_folder_atomically(dir.c_str(), out);
  }

  // Entries of `relative` in the source whose names do not start with '.'; a folder
  // that is gone gives none.
  Result<std::vector<Env::Entry>> visible_entries(const fs::path& relative, bool* absent = nullptr) {
    std::vector<Env::Entry> entries;
    const fs::path dir = data_ / relative;
    if (absent) *absent = false;
    if (list(dir, entries) != 0) {
      if (errno == ENOENT && absent) {
        *absent = true;
        return entries;
      }
      return errno_error("cannot list folder", dir, errno);
    }
    std::erase_if(entries, [](const Env::Entry& e) { return e.name.empty() || e.name.front() == '.'; });
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return entries;
  }

  // nullopt: gone meanwhile.
  Result<std::optional<CopiedFile>> copy_file(const fs::path& relative) {
    GM_ASSIGN_OR_RETURN(std::optional<Bytes> bytes, read_file(env_, data_ / relative));
    if (!bytes) return std::optional<CopiedFile>();
    CopiedFile f;
    f.relative = relative;
    f.bytes = bytes->size();
    GM_ASSIGN_OR_RETURN(f.sha256, write_new_file(out_ / relative, *bytes));
    return std::optional<CopiedFile>(f);
  }

  void skip(const fs::path& relative) { stats_.skipped.push_back(relative.string()); }

  void add(const CopiedFile& f) {
    ++stats_.files;
    stats_.bytes += f.bytes;
    files_.push_back(f);
  }

  // A folder outside the documents: files are copied once (no file there is ever
  // removed by the server but the storageId, which is never replaced); folders are
  // walked, stores recognised, documents copied as units.
  Status copy_tree(const fs::path& relative, int depth, bool store_root) {
    if (depth > kMaxDepth) {
      skip(relative);
      return Status::Ok();
    }
    bool absent = false;
    GM_ASSIGN_OR_RETURN(std::vector<Env::Entry> entries, visible_entries(relative, &absent));
    if (absent) return Status::Ok();
    if (!store_root && depth > 0) {
      // A store holds `st/orage-adapter-id`.
      struct stat st {};
      const fs::path id = data_ / relative / kStorageIdShard / kStorageIdRest;
      if (env_.stat(id.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        store_root = true;
        std::string group;
        for (const auto& part : relative) group += (group.empty() ? "" : ".") + part.string();
        stats_.groups.push_back(group);
      }
    }
    for (const Env::Entry& e : entries) {
      const fs::path child = relative / e.name;
      if (e.type == Env::Entry::kFile) {
        GM_ASSIGN_OR_RETURN(std::optional<CopiedFile> f, copy_file(child));
        if (f) add(*f);
      } else if (e.type == Env::Entry::kFolder) {
        if (store_root && e.name.size() == 2) {
          GM_TRY(copy_shard(child));
        } else {
          GM_TRY(copy_tree(child, depth + 1, /*store_root=*/false));
        }
      } else {
        // A folder behind a symbolic link (a group moved to another disk) is served by
        // the server, which follows the link: refused, not left out of a backup that
        // would then say it succeeded.
        struct stat st {};
        if (env_.stat((data_ / child).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
          return error("cannot back up " + (data_ / child).string() +
                       ": a symbolic link to a folder (back up the folder it points to, or replace the link by it)");
        }
        skip(child);
      }
    }
    return Status::Ok();
  }

  // `<store>/<2 chars>/`: its folders are documents; files (the storageId) are copied.
  Status copy_shard(const fs::path& relative) {
    bool absent = false;
    GM_ASSIGN_OR_RETURN(std::vector<Env::Entry> entries, visible_entries(relative, &absent));
    for (const Env::Entry& e : entries) {
      const fs::path child = relative / e.name;
      if (e.type == Env::Entry::kFile) {
        GM_ASSIGN_OR_RETURN(std::optional<CopiedFile> f, copy_file(child));
        if (f) add(*f);
      } else if (e.type == Env::Entry::kFolder) {
        GM_TRY(copy_document(child));
      } else {
        skip(child);
      }
    }
    return Status::Ok();
  }

  // The files of a folder and of its folders, relative to the data folder, each folder
  // listed once.
  Status list_files(const fs::path& relative, int depth, std::vector<fs::path>& out) {
    bool absent = false;
    GM_ASSIGN_OR_RETURN(std::vector<Env::Entry> entries, visible_entries(relative, &absent));
    for (const Env::Entry& e : entries) {
      if (e.type == Env::Entry::kFile) {
        out.push_back(relative / e.name);
      } else if (e.type == Env::Entry::kFolder && depth < 4) {
        GM_TRY(list_files(relative / e.name, depth + 1, out));
      }
    }
    return Status::Ok();
  }

  // One pass's listing of a document (see the header): `incremental/` first, then the
  // document folder and every other folder in it.
  Status list_document(const fs::path& relative, std::vector<fs::path>& out) {
    GM_TRY(list_files(relative / kIncremental, 1, out));
    bool absent = false;
    GM_ASSIGN_OR_RETURN(std::vector<Env::Entry> entries, visible_entries(relative, &absent));
    for (const Env::Entry& e : entries) {
      if (e.type == Env::Entry::kFile) {
        out.push_back(relative / e.name);
      } else if (e.type == Env::Entry::kFolder && e.name != kIncremental) {
        GM_TRY(list_files(relative / e.name, 1, out));
      } else if (e.type == Env::Entry::kOther) {
        skip(relative / e.name);
      }
    }
    return Status::Ok();
  }

  Status copy_document(const fs::path& relative) {
    ++stats_.documents;
    std::map<fs::path, CopiedFile> copied;  // in the copy, by path
    for (int pass = 1;; ++pass) {
      if (pass > options_.max_passes) {
        return error("document folder " + (data_ / relative).string() + " kept changing through " +
                     std::to_string(options_.max_passes) + " passes; try again when the server is less busy");
      }
      if (pass > 1) ++stats_.repeated_passes;
      std::vector<fs::path> listed;
      GM_TRY(list_document(relative, listed));
      bool vanished = false;
      for (const fs::path& file : listed) {
        // A snapshot's or incremental's name fixes its content. A sync-state file is
        // replaced in place, so an earlier pass may have kept an older one: an older sync
        // state only makes a client send again what the server has, never loses data.
        if (copied.count(file)) continue;
        GM_ASSIGN_OR_RETURN(std::optional<CopiedFile> f, copy_file(file));
        if (f) {
          copied.emplace(file, *f);
        } else {
          vanished = true;  // compacted away: a newer snapshot holds it; list again
        }
      }
      if (vanished) continue;
      // Every listed file read: this pass is the copy. Drop what it no longer lists.
      const std::set<fs::path> keep(listed.begin(), listed.end());
      for (auto it = copied.begin(); it != copied.end();) {
        if (keep.count(it->first)) {
          ++it;
          continue;
        }
        const fs::path path = out_ / it->first;
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error("cannot remove", path, errno);
        it = copied.erase(it);
      }
      for (const auto& [path, f] : copied) add(f);
      return Status::Ok();
    }
  }

  fs::path data_, out_;
  const StoreCopyOptions& options_;
  Env& env_;
  std::vector<CopiedFile>& files_;
  StoreCopyStats stats_;
};

}  // namespace

int list_folder_atomically(const char* dir, std::vector<Env::Entry>& out) {
  out.clear();
  const int fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // The largest record is 19 bytes of header, a 255-byte name and its NUL, padded to 8.
  constexpr size_t kMaxRecord = 280;
  std::vector<char> buf(size_t{256} << 10);
  std::vector<Env::Entry> previous;
  bool have_previous = false;
  for (int attempt = 0; attempt < 100; ++attempt) {
    int calls = 0;
    size_t first = 0;
    if (read_all(fd, dir, buf, out, &calls, &first) != 0) return -1;
    // One call that left room for another record: it reached the end of the folder,
    // under the folder's lock.
    if (calls <= 1 && first + kMaxRecord <= buf.size()) return 0;
    if (first + kMaxRecord > buf.size() && buf.size() < (size_t{256} << 20)) {
      buf.resize(buf.size() * 4);  // the folder did not fit: try again, larger
      continue;
    }
    // Handed out in pieces: two listings in a row that agree.
    if (have_previous && same_entries(previous, out)) return 0;
    previous = out;
    have_previous = true;
  }
  errno = EAGAIN;
  return -1;
}

Status make_private_folders(const fs::path& dir) {
  fs::path at;
  for (const auto& part : dir) {
    at /= part;
    if (::mkdir(at.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("cannot create folder", at, errno);
  }
  return Status::Ok();
}

Result<Sha256Digest> write_new_file(const fs::path& path, ByteView bytes, unsigned mode) {
  GM_TRY(make_private_folders(path.parent_path()));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return errno_error("cannot create", path, errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      return errno_error("cannot write", path, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return errno_error("cannot write", path, errno);
  return sha256(bytes);
}

Result<StoreCopyStats> copy_document_stores(const fs::path& data_dir, const fs::path& out_dir,
                                            const StoreCopyOptions& options, std::vector<CopiedFile>& files) {
  Copier copier(data_dir, out_dir, options, files);
  GM_TRY(copier.run());
  return std::move(copier.stats());
}

}  // namespace gm::storage
