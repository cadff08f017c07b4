#include "storage/document_store.h"

#include <openssl/rand.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "storage/durable_file.h"
#include "util/hex.h"
#include "util/sha256.h"

namespace gm::storage {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kRemovingPrefix = ".removing-";
constexpr std::string_view kDamagedPrefix = ".damaged-";
// Where temp files are written before they are renamed into place: out of every
// document's folder, which npm's NodeFS adapter reads whole (a leftover half-written
// temp there would make npm stop reading the document at it, and its compaction then
// drop what came after).
constexpr std::string_view kTempFolder = ".tmp";
// In the temp folder once open() has looked for leftovers of older versions everywhere.
constexpr std::string_view kSweptMarker = ".swept";
// Keys are a handful of elements deep; anything deeper is not ours.
constexpr int kMaxDepth = 16;
// A registry file larger than this is not read (and is rewritten): it cannot be ours.
constexpr size_t kMaxVerifiedFileBytes = 64 << 20;

std::string joined(const StorageKey& key) {
  std::string out;
  for (const std::string& part : key) out += (out.empty() ? "" : "/") + part;
  return out;
}

const StorageKey kStorageIdKey = {"storage-adapter-id"};

bool is_lower_hex_sha256(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A storageId as JS writes it is a UUID; accept any short printable token.
bool plausible_storage_id(ByteView b) {
  return !b.empty() && b.size() <= 128 && std::all_of(b.begin(), b.end(), [](uint8_t c) { return c > 0x20 && c < 0x7f; });
}

std::string timestamp_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Status validate_element(std::string_view e, size_t index) {
  auto where = [&] { return "key element " + std::to_string(index) + " \"" + std::string(e.substr(0, 80)) + "\""; };
  if (e.empty()) return error("key element " + std::to_string(index) + " is empty");
  if (e.front() == '.') return error(where() + " starts with '.' (reserved for temporary files)");
  if (e.find('/') != std::string_view::npos || e.find('\0') != std::string_view::npos) {
    return error(where() + " contains '/' or NUL");
  }
  if (e.size() > 255) return error(where() + " is longer than 255 bytes");
  return Status::Ok();
}

}  // namespace

Status validate_key(const StorageKey& key) {
  if (key.empty()) return error("empty storage key");
  for (size_t i = 0; i < key.size(); ++i) GM_TRY(validate_element(key[i], i));
  if (key[0].size() < 3) {
    return error("first key element \"" + key[0] + "\" is shorter than 3 characters (it is split after 2 into two folders)");
  }
  return Status::Ok();
}

std::string key_to_string(const StorageKey& key) {
  std::string out;
  for (const auto& e : key) {
    if (!out.empty()) out += '/';
    out += e;
  }
  return out;
}

Result<fs::path> key_to_relative_path(const StorageKey& key) {
  GM_TRY(validate_key(key));
  fs::path p = fs::path(key[0].substr(0, 2)) / key[0].substr(2);
  for (size_t i = 1; i < key.size(); ++i) p /= key[i];
  return p;
}

Result<StorageKey> relative_path_to_key(const fs::path& relative) {
  std::vector<std::string> parts;
  for (const auto& part : relative) parts.push_back(part.string());
  if (parts.size() < 2 || parts[0].size() != 2) {
    return error("path " + relative.string() + " is not a storage key path (expected <2 chars>/<rest>/…)");
  }
  StorageKey key;
  key.reserve(parts.size() - 1);
  key.push_back(parts[0] + parts[1]);
  for (size_t i = 2; i < parts.size(); ++i) key.push_back(parts[i]);
  GM_TRY(validate_key(key));
  return key;
}

std::string new_uuid_v4() {
  std::array<uint8_t, 16> b{};
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) std::abort();
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  std::string h = to_hex(ByteView(b.data(), b.size()));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

StorageKey incremental_key(std::string_view document_id, ByteView bytes) {
  return {std::string(document_id), "incremental", to_hex(sha256(bytes))};
}

StorageKey snapshot_key(std::string_view document_id, std::vector<std::string> heads_hex) {
  std::sort(heads_hex.begin(), heads_hex.end());
  Sha256 h;
  for (const auto& head : heads_hex) h.update(as_bytes(head));
  return {std::string(document_id), "snapshot", to_hex(h.finish())};
}

StorageKey sync_state_key(std::string_view document_id, std::string_view peer_storage_id) {
  return {std::string(document_id), "sync-state", std::string(peer_storage_id)};
}

DocumentStore::DocumentStore(fs::path dir, StoreOptions options)
    : dir_(std::move(dir)),
      options_(std::move(options)),
      env_(options_.env ? *options_.env : Env::posix()),
      batch_(dir_ / kTempFolder, env_) {
  if (options_.quarantine_dir.empty()) options_.quarantine_dir = dir_ / ".quarantine";
  if (options_.verified_file.empty()) options_.verified_file = dir_ / ".verified-snapshots";
}

Result<std::unique_ptr<DocumentStore>> DocumentStore::open(fs::path dir, StoreOptions options) {
  std::unique_ptr<DocumentStore> store(new DocumentStore(std::move(dir), std::move(options)));
  if (auto st = create_directories_durably(store->env_, store->dir_); !st.ok()) return context("opening store", st.error());
  // Whatever a run that crashed left visible but unflushed (a folder, a file renamed
  // into place, the folders above the store) is made durable before any of it is served
  // or built on: one flush of the filesystem, once per store and process.
  if (auto st = sync_filesystem(store->env_, store->dir_); !st.ok()) return context("opening store", st.error());
  if (auto st = store->batch_.make_folders(store->temp_dir()); !st.ok()) return context("opening store", st.error());
  if (auto st = store->sweep(); !st.ok()) return context("opening store", st.error());
  if (auto st = store->init_storage_id(); !st.ok()) return context("opening store", st.error());
  return store;
}

Status DocumentStore::sweep() {
  // Leftovers live in the temp folder only (temp files, ranges being removed), so
  // opening a store costs the same whatever it holds. Versions before the marker also
  // left them beside their targets: those are looked for once, in a walk of the whole
  // store, and the marker says it was done.
  const fs::path marker = temp_dir() / kSweptMarker;
  struct stat st {};
  if (env_.lstat(marker.c_str(), &st) == 0) return remove_leftovers(temp_dir(), 1);
  leftovers_missed_ = false;
  GM_TRY(remove_leftovers(dir_, 0));
  if (leftovers_missed_) return Status::Ok();  // reported; walked again at the next open
  if (Status s = write_file_durably(env_, marker, {}, 0600, temp_dir()); !s) {
    report({marker, "cannot mark the store as swept (" + s.error().message + "); it is walked again at the next open",
            std::nullopt});
  }
  return Status::Ok();
}

fs::path DocumentStore::temp_dir() const { return dir_ / kTempFolder; }

void DocumentStore::report(StorageProblem problem) {
  std::lock_guard<std::mutex> lock(report_mutex_);
  if (options_.report) {
    options_.report(problem);
    return;
  }
  std::fprintf(stderr, "storage: %s: %s%s%s\n", problem.path.c_str(), problem.reason.c_str(),
               problem.moved_to ? "; moved to " : "", problem.moved_to ? problem.moved_to->c_str() : "");
}

void DocumentStore::set_aside(const fs::path& path, std::string reason) {
  fs::path relative = path.lexically_relative(dir_);
  if (relative.empty() || *relative.begin() == "..") relative = path.filename();
  std::string suffix = "." + timestamp_now() + "-" + random_suffix().substr(0, 8);
  fs::path dest = options_.quarantine_dir / relative;
  dest += suffix;
  Status moved = create_directories_durably(env_, dest.parent_path());
  if (moved.ok() && env_.rename(path.c_str(), dest.c_str()) != 0) moved = errno_error("cannot move", path, errno);
  if (!moved.ok()) {
    // Quarantine folder unusable (other file system, permissions): hide the file in
    // place instead; names starting with '.' are never read as keys.
    dest = path.parent_path() / (std::string(kDamagedPrefix) + path.filename().string() + suffix);
    if (env_.rename(path.c_str(), dest.c_str()) != 0) {
      report({path, reason + "; could not be set aside (" + moved.error().message + ", then " +
                        std::string(std::strerror(errno)) + "); it is skipped but stays in place",
              std::nullopt});
      return;
    }
  } else {
    (void)sync_directory(env_, dest.parent_path());
  }
  (void)sync_directory(env_, path.parent_path());
  report({path, std::move(reason), dest});
}

Status DocumentStore::remove_leftovers(const fs::path& folder, int depth) {
  if (depth > kMaxDepth) return Status::Ok();
  std::vector<Env::Entry> entries;
  if (env_.list(folder.c_str(), entries) != 0) {
    Error e = errno_error("cannot list folder", folder, errno);
    if (depth == 0) return e;
    leftovers_missed_ = true;
    report({folder, e.message, std::nullopt});
    return Status::Ok();
  }
  bool removed = false;
  for (const Env::Entry& e : entries) {
    const fs::path p = folder / e.name;
    const bool is_dir = e.type == Env::Entry::kFolder;
    if (e.name.starts_with(kTempPrefix) && !is_dir) {
      if (env_.unlink(p.c_str()) == 0) removed = true;
    } else if (e.name.starts_with(kRemovingPrefix) && is_dir) {
      if (Status s = remove_tree(env_, p); !s) {
        leftovers_missed_ = true;
        report({p, "cannot finish removing: " + s.error().message, std::nullopt});
      }
      removed = true;
    } else if (is_dir && (e.name.front() != '.' || (depth == 0 && e.name == kTempFolder))) {
      GM_TRY(remove_leftovers(p, depth + 1));
    }
  }
  if (removed) (void)sync_directory(env_, folder);
  return Status::Ok();
}

Status DocumentStore::init_storage_id() {
  fs::path path = dir_ / key_to_relative_path(kStorageIdKey).value();
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto existing = read_file(env_, path);
    if (existing.ok() && existing->has_value()) {
      if (plausible_storage_id(**existing)) {
        storage_id_ = std::string(as_string(**existing));
        return Status::Ok();
      }
      set_aside(path, "storage-adapter-id is not a printable id (" + std::to_string((*existing)->size()) +
                          " bytes); a new storageId is created");
    } else if (!existing.ok()) {
      return existing.error();  // unreadable is not damaged: a new id would be wrong
    }
    std::string id = new_uuid_v4();
    GM_TRY(batch_.make_folders(path.parent_path()));
    GM_ASSIGN_OR_RETURN(bool created, create_file_durably(env_, path, as_bytes(id), 0644, temp_dir()));
    if (created) {
      storage_id_ = std::move(id);
      return Status::Ok();
    }
    // Another process created it first: read theirs.
  }
  return error("cannot settle the storageId in " + path.string());
}

std::optional<std::string> DocumentStore::check_content(const StorageKey& key, ByteView bytes) const {
  // §4.1: an incremental file is named by the SHA-256 of its bytes, so truncation or
  // bit rot is detectable here. Snapshots are named by their heads; the caller checks
  // those by parsing (and calls quarantine()).
  if (key.size() == 3 && key[1] == "incremental" && is_lower_hex_sha256(key[2])) {
    std::string actual = to_hex(sha256(bytes));
    if (actual != key[2]) {
      return "content does not match its name (SHA-256 " + actual.substr(0, 16) + "…, " + std::to_string(bytes.size()) +
             " bytes): truncated or damaged";
    }
  }
  return std::nullopt;
}

Status DocumentStore::save(const StorageKey& key, ByteView bytes) {
  GM_ASSIGN_OR_RETURN(fs::path relative, key_to_relative_path(key));
  fs::path path = dir_ / relative;
  GM_TRY(batch_.make_folders(path.parent_path()));
  return write_file_durably(env_, path, bytes, 0600, temp_dir());
}

Result<PendingFile> DocumentStore::prepare(const StorageKey& key, ByteView bytes) const {
  GM_ASSIGN_OR_RETURN(fs::path relative, key_to_relative_path(key));
  return batch_.prepare(dir_ / relative, bytes, 0600);
}

Result<std::optional<Bytes>> DocumentStore::load(const StorageKey& key) {
  GM_ASSIGN_OR_RETURN(fs::path relative, key_to_relative_path(key));
  fs::path path = dir_ / relative;
  // A file that cannot be read (permissions, no file descriptors left, an I/O error)
  // is not known to be damaged: the load fails and the file stays where it is.
  GM_ASSIGN_OR_RETURN(std::optional<Bytes> bytes, read_file(env_, path));
  if (bytes) {
    if (auto problem = check_content(key, *bytes)) {
      set_aside(path, *problem);
      return std::optional<Bytes>();
    }
  }
  return bytes;
}

Status DocumentStore::walk(const fs::path& folder, const fs::path& relative, int depth, std::vector<StorageKey>& keys) {
  // A folder that cannot be listed fails the whole listing: the keys it holds are
  // not known to be absent.
  std::vector<Env::Entry> entries;
  if (env_.list(folder.c_str(), entries) != 0) return errno_error("cannot list folder", folder, errno);
  for (const Env::Entry& e : entries) {
    if (e.name.empty() || e.name.front() == '.') continue;  // temp files, set-aside files
    const fs::path path = folder / e.name;
    if (e.type == Env::Entry::kFolder) {
      if (depth >= kMaxDepth) {
        report({path, "folder nested too deep to be a key; skipped", std::nullopt});
        continue;
      }
      GM_TRY(walk(path, relative / e.name, depth + 1, keys));
    } else if (e.type == Env::Entry::kFile) {
      auto key = relative_path_to_key(relative / e.name);
      if (!key.ok()) {
        report({path, key.error().message + "; skipped", std::nullopt});
        continue;
      }
      keys.push_back(std::move(*key));
    } else {
      report({path, "not a regular file or folder; skipped", std::nullopt});
    }
  }
  return Status::Ok();
}

Result<uint64_t> DocumentStore::document_bytes() {
  GM_ASSIGN_OR_RETURN(TreeStats stats, tree_stats(dir_, 0));
  return stats.bytes;
}

Result<DocumentStore::TreeStats> DocumentStore::tree_stats(const fs::path& folder, int depth) {
  std::vector<Env::Entry> entries;
  if (env_.list(folder.c_str(), entries) != 0) return errno_error("cannot measure", folder, errno);
  TreeStats total;
  for (const Env::Entry& e : entries) {
    if (e.name.front() == '.') continue;  // temp files, set-aside files
    const fs::path path = folder / e.name;
    struct stat st {};
    if (e.type == Env::Entry::kFile && env_.lstat(path.c_str(), &st) == 0) {
      total.bytes += static_cast<uint64_t>(st.st_size);
      total.newest = std::max<int64_t>(total.newest, st.st_mtim.tv_sec);
    }
    if (e.type == Env::Entry::kFolder && depth < kMaxDepth) {
      GM_ASSIGN_OR_RETURN(TreeStats below, tree_stats(path, depth + 1));
      total.bytes += below.bytes;
      total.newest = std::max(total.newest, below.newest);
    }
  }
  return total;
}

Result<std::vector<StorageKey>> DocumentStore::list_range(const StorageKey& prefix) {
  GM_ASSIGN_OR_RETURN(fs::path relative, key_to_relative_path(prefix));
  fs::path path = dir_ / relative;
  std::vector<StorageKey> keys;
  struct stat st {};
  if (env_.lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return keys;
    return errno_error("cannot inspect", path, errno);
  }
  if (S_ISREG(st.st_mode)) {
    keys.push_back(prefix);  // the prefix names a file itself
  } else if (S_ISDIR(st.st_mode)) {
    GM_TRY(walk(path, relative, static_cast<int>(prefix.size()), keys));
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

Result<bool> DocumentStore::has_document(const std::string& document_id) {
  for (const char* kind : {"snapshot", "incremental"}) {
    GM_ASSIGN_OR_RETURN(std::vector<StorageKey> keys, list_range({document_id, kind}));
    if (!keys.empty()) return true;
  }
  return false;
}

Result<std::vector<std::pair<StorageKey, Bytes>>> DocumentStore::load_range(const StorageKey& prefix) {
  GM_ASSIGN_OR_RETURN(std::vector<StorageKey> keys, list_range(prefix));
  std::vector<std::pair<StorageKey, Bytes>> out;
  out.reserve(keys.size());
  for (auto& key : keys) {
    GM_ASSIGN_OR_RETURN(std::optional<Bytes> bytes, load(key));
    if (bytes) out.emplace_back(std::move(key), std::move(*bytes));
  }
  return out;
}

Status DocumentStore::remove(const StorageKey& key) { return remove_keys(std::span<const StorageKey>(&key, 1)); }

Status DocumentStore::remove_keys(std::span<const StorageKey> keys) {
  for (const StorageKey& key : keys) forget_verified(key);
  // Past a failure, the others are still removed and their folders flushed; the
  // first error is reported.
  Status result;
  std::set<fs::path> folders;
  for (const StorageKey& key : keys) {
    auto relative = key_to_relative_path(key);
    if (!relative) {
      if (result) result = relative.error();
      continue;
    }
    fs::path path = dir_ / *relative;
    if (env_.unlink(path.c_str()) != 0 && errno != ENOENT) {
      if (result) result = errno_error("cannot remove", path, errno);
      continue;
    }
    // Gone already is flushed too: an earlier removal may have failed at its flush.
    folders.insert(path.parent_path());
  }
  for (const fs::path& folder : folders) {
    Status s = sync_directory(env_, folder);
    if (!s && s.error().code != ErrorCode::kNotFound && result) result = s;  // no folder: nothing to flush
  }
  return result;
}

Status DocumentStore::remove_range(const StorageKey& prefix) {
  GM_ASSIGN_OR_RETURN(fs::path relative, key_to_relative_path(prefix));
  forget_verified(prefix);
  fs::path path = dir_ / relative;
  // Rename first, into the temp folder, so the whole range disappears at once; a crash
  // during the recursive delete leaves only a `.removing-…` folder there, which open()
  // finishes off.
  fs::path aside = temp_dir() / (std::string(kRemovingPrefix) + path.filename().string() + "-" + random_suffix());
  if (env_.rename(path.c_str(), aside.c_str()) != 0) {
    const int err = errno;
    struct stat st {};
    if (err != ENOENT || env_.lstat(path.c_str(), &st) == 0) return errno_error("cannot remove", path, err);
    // Gone already, maybe by an earlier call whose flush failed: flushed now.
    Status s = sync_directory(env_, path.parent_path());
    return s || s.error().code == ErrorCode::kNotFound ? Status::Ok() : s;
  }
  // The source's flush makes the removal durable; the temp folder's, where it went.
  Status source = sync_directory(env_, path.parent_path());
  Status temp = sync_directory(env_, temp_dir());
  GM_TRY(source);
  GM_TRY(temp);
  if (Status s = remove_tree(env_, aside); !s) {
    report({aside, "cannot finish removing (retried at next open): " + s.error().message, std::nullopt});
  }
  return Status::Ok();
}

Result<std::vector<std::string>> DocumentStore::list_document_ids() {
  std::vector<std::string> ids;
  std::vector<Env::Entry> top, sub;
  if (env_.list(dir_.c_str(), top) != 0) return errno_error("cannot list", dir_, errno);
  for (const Env::Entry& head : top) {
    if (head.name.size() != 2 || head.name.front() == '.' || head.type != Env::Entry::kFolder) continue;
    const fs::path folder = dir_ / head.name;
    if (env_.list(folder.c_str(), sub) != 0) {
      report({folder, errno_error("cannot list folder", folder, errno).message + "; its documents are skipped",
              std::nullopt});
      continue;
    }
    for (const Env::Entry& rest : sub) {
      if (rest.name.empty() || rest.name.front() == '.' || rest.type != Env::Entry::kFolder) continue;
      ids.push_back(head.name + rest.name);
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<std::vector<DocumentSummary>> DocumentStore::list_documents() {
  GM_ASSIGN_OR_RETURN(std::vector<std::string> ids, list_document_ids());
  std::vector<DocumentSummary> documents;
  documents.reserve(ids.size());
  for (std::string& id : ids) {
    // A document removed since the listing, or unreadable, is left out.
    auto stats = tree_stats(dir_ / id.substr(0, 2) / id.substr(2), 2);
    if (stats) documents.push_back({std::move(id), stats->bytes, stats->newest});
  }
  return documents;
}

Status DocumentStore::quarantine(const StorageKey& key, std::string_view reason) {
  GM_ASSIGN_OR_RETURN(fs::path relative, key_to_relative_path(key));
  forget_verified(key);
  fs::path path = dir_ / relative;
  struct stat st {};
  if (env_.lstat(path.c_str(), &st) != 0) return errno_error("cannot set aside", path, errno);
  set_aside(path, std::string(reason));
  return Status::Ok();
}

// Which checks a listed snapshot passed: raised when the engine refuses more than it
// did (v2: documents npm refuses, issue 13), so that what older versions listed is
// read in full once more.
constexpr std::string_view kChecksVersion = "v2";

std::string DocumentStore::fingerprint(ByteView bytes) {
  return std::string(kChecksVersion) + ":" + to_hex(sha256(bytes));
}

namespace {

// A key from its joined form; nullopt unless it is a key set_verified would take (a
// snapshot), or a prefix of one when `prefix`.
std::optional<StorageKey> split_key(std::string_view joined_key, bool prefix) {
  StorageKey key;
  for (size_t from = 0, slash; from <= joined_key.size(); from = slash + 1) {
    slash = std::min(joined_key.find('/', from), joined_key.size());
    key.emplace_back(joined_key.substr(from, slash - from));
  }
  if (!key_to_relative_path(key)) return std::nullopt;
  if (prefix ? key.size() > 3 : key.size() != 3 || key[1] != "snapshot") return std::nullopt;
  return key;
}

// The hashes the list of checked snapshots keeps: 8 bytes of a key's or a document id's
// SHA-256, 16 of a fingerprint's; as hex in the file.
using PrintHash = std::array<uint8_t, 16>;

uint64_t hash8(std::string_view text) {
  const Sha256Digest d = sha256(as_bytes(text));
  uint64_t v = 0;
  std::memcpy(&v, d.data(), 8);
  return v;
}

PrintHash hash16(std::string_view text) {
  const Sha256Digest d = sha256(as_bytes(text));
  PrintHash out{};
  std::copy_n(d.begin(), out.size(), out.begin());
  return out;
}

std::string hex8(uint64_t v) {
  uint8_t bytes[8];
  std::memcpy(bytes, &v, 8);
  return to_hex(ByteView(bytes, 8));
}

std::string hex16(const PrintHash& h) { return to_hex(ByteView(h.data(), h.size())); }

bool parse_hex8(std::string_view hex, uint64_t& out) {
  auto bytes = hex.size() == 16 ? from_hex(hex) : error("");
  if (bytes) std::memcpy(&out, bytes->data(), 8);
  return bytes.ok();
}

bool parse_hex16(std::string_view hex, PrintHash& out) {
  auto bytes = hex.size() == 32 ? from_hex(hex) : error("");
  if (bytes) std::copy_n(bytes->begin(), out.size(), out.begin());
  return bytes.ok();
}

// The fields of a line, split at single spaces; no more than 5 (no line of ours has
// more: a longer one is junk, and a corrupt file must not cost memory per space).
std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  for (size_t from = 0, space; from <= line.size() && out.size() < 5; from = space + 1) {
    space = std::min(line.find(' ', from), line.size());
    out.push_back(line.substr(from, space - from));
  }
  return out;
}

}  // namespace

void DocumentStore::verified_problem(const std::string& what) {
  if (std::exchange(verified_reported_, true)) return;
  report({options_.verified_file, what + "; snapshots this server checked will be read in full again after a restart",
          std::nullopt});
}

void DocumentStore::load_verified() {
  if (std::exchange(verified_loaded_, true)) return;
  const fs::path& path = options_.verified_file;
  struct stat st {};
  if (env_.lstat(path.c_str(), &st) != 0) return;  // none yet
  if (static_cast<uint64_t>(st.st_size) > kMaxVerifiedFileBytes) {
    return verified_problem("the list of checked snapshots is too large to be ours");
  }
  auto bytes = read_file(env_, path);
  if (!bytes || !*bytes) return verified_problem("cannot read the list of checked snapshots");
  std::string_view text = as_string(**bytes);
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    apply_verified(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
    ++verified_lines_;
  }
}

// The lines: "= KEY DOC PRINT" (a checked snapshot: the hashes of its key, its document
// id and its fingerprint), "x KEY" (a key removed), "X DOC" (a document's range
// removed). Versions before 0.11 wrote "+key fingerprint" and "-prefix" in full; they
// are read too. Anything else is ignored.
void DocumentStore::apply_verified(std::string_view line) {
  const std::vector<std::string_view> f = fields(line);
  auto forget_document = [this](uint64_t doc) {
    std::erase_if(verified_, [doc](const auto& e) { return e.second.document == doc; });
  };
  uint64_t key = 0;
  Verified v;
  if (f.size() == 4 && f[0] == "=" && parse_hex8(f[1], key) && parse_hex8(f[2], v.document) &&
      parse_hex16(f[3], v.print)) {
    verified_[key] = v;
  } else if (f.size() == 2 && f[0] == "x" && parse_hex8(f[1], key)) {
    verified_.erase(key);
  } else if (f.size() == 2 && f[0] == "X" && parse_hex8(f[1], v.document)) {
    forget_document(v.document);
  } else if (f.size() == 2 && line.starts_with('+')) {
    if (auto k = split_key(f[0].substr(1), /*prefix=*/false)) verified_[hash8(joined(*k))] = {hash8((*k)[0]), hash16(f[1])};
  } else if (f.size() == 1 && line.starts_with('-')) {
    if (auto prefix = split_key(line.substr(1), /*prefix=*/true)) {
      if (prefix->size() == 3) {
        verified_.erase(hash8(joined(*prefix)));
      } else {
        forget_document(hash8((*prefix)[0]));
      }
    }
  }
}

void DocumentStore::append_verified(const std::string& line) {
  const fs::path& path = options_.verified_file;
  if (verified_lines_ == 0) (void)create_directories_durably(env_, path.parent_path());
  if (verified_lines_ + 1 > 2 * verified_.size() + 1024) {
    // Mostly lines about keys since removed: written afresh with the live ones.
    std::string all;
    for (const auto& [key, v] : verified_) all += "= " + hex8(key) + " " + hex8(v.document) + " " + hex16(v.print) + "\n";
    if (Status s = write_file_durably(env_, path, as_bytes(all)); !s) return verified_problem(s.error().message);
    verified_lines_ = verified_.size();
    return;
  }
  const int fd = env_.open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return verified_problem(errno_error("cannot open", path, errno).message);
  const bool whole = env_.write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  if (!whole) verified_problem(errno_error("cannot write", path, errno).message);
  env_.close(fd);
  if (whole) ++verified_lines_;
}

bool DocumentStore::is_verified(const StorageKey& key, const std::string& print) {
  const uint64_t k = hash8(joined(key));
  const PrintHash p = hash16(print);
  std::lock_guard lock(verified_mutex_);
  load_verified();
  auto it = verified_.find(k);
  return it != verified_.end() && it->second.print == p;
}

void DocumentStore::set_verified(const StorageKey& key, const std::string& print) {
  if (!split_key(joined(key), /*prefix=*/false)) return;
  const uint64_t k = hash8(joined(key));
  const Verified v{hash8(key[0]), hash16(print)};
  std::lock_guard lock(verified_mutex_);
  load_verified();
  auto [it, added] = verified_.try_emplace(k, v);
  if (!added && it->second.print == v.print) return;
  it->second = v;
  append_verified("= " + hex8(k) + " " + hex8(v.document) + " " + hex16(v.print) + "\n");
}

void DocumentStore::forget_verified(const StorageKey& prefix) {
  if (prefix.empty()) return;
  // A shorter prefix than a whole key forgets its whole document: more than needed at
  // worst (one more check), and the ranges removed are whole documents.
  const bool whole_key = prefix.size() == 3;
  const uint64_t h = hash8(whole_key ? joined(prefix) : prefix[0]);
  std::lock_guard lock(verified_mutex_);
  load_verified();
  const size_t erased = whole_key ? verified_.erase(h)
                                  : std::erase_if(verified_, [h](const auto& e) { return e.second.document == h; });
  if (erased > 0) append_verified((whole_key ? "x " : "X ") + hex8(h) + "\n");
}

}  // namespace gm::storage
