// One lexicon group's documents, stored in the folder layout of automerge-repo's
// NodeFSStorageAdapter (spec/automerge.md §4), so a folder can be served by this server
// or by a JS repo interchangeably.
//
// Usage:
//   StoreOptions opts{.quarantine_dir = data / ".groundmist/quarantine/xyz.groundmist.library"};
//   GM_ASSIGN_OR_RETURN(auto store, DocumentStore::open(data / "xyz/groundmist/library", opts));
//   store->storage_id();                                          // for the `peer` message
//   GM_TRY(store->save(incremental_key(doc_id, bytes), bytes));   // durable on return
//   // compaction: save(snapshot_key(doc_id, heads_hex), doc_chunk) first, then remove the old keys
//   GM_ASSIGN_OR_RETURN(auto chunks, store->load_range({doc_id, "snapshot"}));
//   store->quarantine({doc_id, "snapshot", h}, "chunk checksum mismatch");  // caller found it corrupt
//
// Layout (§4.1, §4.3). A key is an array of strings; its path is
//   <dir>/<key[0][0..2]>/<key[0][2..]>/<key[1]>/<key[2]>…
// e.g. [docId, "snapshot", H]      → 2J/vEZqc…/snapshot/H   (a document chunk)
//      [docId, "incremental", H]   → 2J/vEZqc…/incremental/H (change chunks; H = hex SHA-256 of the file)
//      [docId, "sync-state", sid]  → 2J/vEZqc…/sync-state/sid
//      ["storage-adapter-id"]      → st/orage-adapter-id   (this store's storageId, a UUID v4)
// and load_range rebuilds keys by joining the first two path components again.
// Key elements must be non-empty, contain no '/' or NUL, and not start with '.'; the
// first has at least 3 characters (so both of its path parts are non-empty).
//
// Crash safety (DESIGN.md): save() writes a temp file `.tmp-…` in `<dir>/.tmp/`,
// fsyncs it, renames it into place and fsyncs the folder before returning, so a
// change is durable before anyone is told about it. Temp files stay out of the
// document folders because npm's NodeFS adapter reads every file in them, a leftover
// half-written temp too. Names starting with '.' are never keys: load_range skips
// them, and open() deletes leftover temp files and half-removed ranges (`.removing-…`),
// all in `.tmp/` (once, also those beside their targets, where earlier versions left
// them: a marker `.tmp/.swept` says it was done, so opening does not walk the documents).
//
// Damage is never fatal: an `incremental` file whose SHA-256 does not match its name
// (e.g. truncated), or a file the caller reports via quarantine(), is moved under
// options.quarantine_dir (same relative path, plus a timestamp), reported through
// options.report, and left out of the results; every other key keeps loading. A file
// or folder that cannot be read at all (permissions, no file descriptors left, an I/O
// error) is not known to be damaged: the call fails and nothing is moved.
//
// Every system call goes through options.env (env.h), so tests can make any of them
// fail (fault_env.h).
//
// Thread safety: calls for different keys may run concurrently; concurrent saves of the
// same key leave one of the values. remove_range must not race saves under its prefix.
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "storage/durable_file.h"
#include "util/bytes.h"
#include "util/result.h"

namespace gm::storage {

using StorageKey = std::vector<std::string>;

// Something wrong with one file that the store worked around.
struct StorageProblem {
  std::filesystem::path path;                      // the file as it was
  std::string reason;                              // what was wrong
  std::optional<std::filesystem::path> moved_to;   // where it was set aside, if it was
};

struct StoreOptions {
  // Where damaged files go; empty = `<dir>/.quarantine`.
  std::filesystem::path quarantine_dir;
  // The registry of checked snapshots (is_verified); empty = `<dir>/.verified-snapshots`.
  std::filesystem::path verified_file;
  // Called for every problem (from any thread, serialised); default: a line on stderr.
  std::function<void(const StorageProblem&)> report;
  // Every system call the store makes goes through it (env.h); null = Env::posix().
  // It must outlive the store and every PendingFile the store prepared.
  Env* env = nullptr;
};

// "2J/vEZqc…/snapshot/H" style path of a key relative to the store folder.
Result<std::filesystem::path> key_to_relative_path(const StorageKey& key);
// Inverse of key_to_relative_path for a path made of plain components.
Result<StorageKey> relative_path_to_key(const std::filesystem::path& relative);
Status validate_key(const StorageKey& key);
// "a/b/c", for messages.
std::string key_to_string(const StorageKey& key);

// A random UUID v4 in its 36-character text form.
std::string new_uuid_v4();

// The keys automerge-repo's StorageSubsystem uses (§4.1):
// [docId, "incremental", hex SHA-256 of the bytes]
StorageKey incremental_key(std::string_view document_id, ByteView bytes);
// [docId, "snapshot", hex SHA-256 of the concatenated lowercase hex heads, sorted]
StorageKey snapshot_key(std::string_view document_id, std::vector<std::string> heads_hex);
// [docId, "sync-state", storageId of the remote peer]
StorageKey sync_state_key(std::string_view document_id, std::string_view peer_storage_id);

// One document as its files show it, without reading them.
struct DocumentSummary {
  std::string id;
  uint64_t bytes = 0;    // of its files
  int64_t written = 0;   // unix seconds: the newest modification time among its files
};

class DocumentStore {
 public:
  // Opens (creating if needed) the store in `dir`: creates the folder, deletes
  // leftover temp files, reads or creates the storageId.
  static Result<std::unique_ptr<DocumentStore>> open(std::filesystem::path dir, StoreOptions options = {});

  const std::filesystem::path& dir() const { return dir_; }
  // Where temp files are written (see "Crash safety").
  std::filesystem::path temp_dir() const;
  const std::string& storage_id() const { return storage_id_; }

  // Durably replaces the value of `key`.
  Status save(const StorageKey& key, ByteView bytes);
  // A deferred save, for a caller that writes on a worker and flushes on another
  // thread: prepare() (any thread) writes the value beside its place (reads still see
  // the old value); DurableBatch::commit (any thread) makes what it wrote durable and
  // visible. Callers hold back whatever reveals the value until then.
  Result<PendingFile> prepare(const StorageKey& key, ByteView bytes) const;
  // nullopt if absent, or if the file was damaged and set aside (reported); an error
  // if it cannot be read.
  Result<std::optional<Bytes>> load(const StorageKey& key);
  // Every (key, bytes) whose key starts with `prefix` (at least one element), sorted by
  // key. Damaged files are set aside, reported and left out; a file or folder that
  // cannot be read fails the call.
  Result<std::vector<std::pair<StorageKey, Bytes>>> load_range(const StorageKey& prefix);
  // Bytes of every document file in the store (a walk of the folder; for quotas).
  Result<uint64_t> document_bytes();
  // Keys only, without reading the files.
  Result<std::vector<StorageKey>> list_range(const StorageKey& prefix);
  // Whether the document has a snapshot or incremental file (keys only, no reads).
  Result<bool> has_document(const std::string& document_id);
  // Removing an absent key is not an error.
  Status remove(const StorageKey& key);
  // The same for several keys, each folder flushed once, not once per file (a
  // document compacted from thousands of incremental files).
  Status remove_keys(std::span<const StorageKey> keys);
  // Removes every key under `prefix` (one atomic rename, then a recursive delete).
  Status remove_range(const StorageKey& prefix);
  // The first key elements present (the documentIds), sorted; storage-adapter-id
  // excluded.
  Result<std::vector<std::string>> list_document_ids();
  // The same ids with their files' bytes and latest write (a walk of the folder, one
  // stat per file; for the console's listings).
  Result<std::vector<DocumentSummary>> list_documents();

  // Moves the file of `key` aside and reports `reason`: for callers that found its
  // content corrupt (e.g. a snapshot that does not parse).
  Status quarantine(const StorageKey& key, std::string_view reason);

  // Snapshots known to hold what their names say: written by this server from changes
  // it had checked, or read in full once and found right. The repo serves these without
  // reading them in full (group_repo.h, Doc::expanded); a snapshot written by another
  // program is read in full, and checked, the first time. Each is known by its key and
  // the fingerprint of its bytes (a file replaced under the same name is not trusted).
  // Kept in options.verified_file: one line per change, appended without a flush, as a
  // lost line costs one more check or, for a removal, a fingerprint that no longer
  // matches; rewritten once it holds more lines than live keys. Removing or setting
  // aside a key forgets it; removing a range forgets its whole document. In memory and
  // in the file each snapshot takes hashes only (about 60 bytes of memory: a server
  // keeps one per document for years), so a hash collision can at worst forget
  // another snapshot (it is then checked again), never vouch for unchecked bytes: the
  // fingerprint is compared as 128 bits of its SHA-256. Any thread.
  // "v2:<SHA-256 hex>": the bytes, and the version of the checks they passed.
  static std::string fingerprint(ByteView bytes);
  bool is_verified(const StorageKey& key, const std::string& fingerprint);
  void set_verified(const StorageKey& key, const std::string& fingerprint);

 private:
  DocumentStore(std::filesystem::path dir, StoreOptions options);
  Status remove_leftovers(const std::filesystem::path& folder, int depth);
  // Deletes leftovers of interrupted writes and removals (open()).
  Status sweep();
  bool leftovers_missed_ = false;  // remove_leftovers could not look or remove somewhere
  Status init_storage_id();
  // Sets the file aside and reports; never fails (a failure to move is reported too).
  void set_aside(const std::filesystem::path& path, std::string reason);
  void report(StorageProblem problem);
  // Checks content against the name where the layout allows it.
  std::optional<std::string> check_content(const StorageKey& key, ByteView bytes) const;
  Status walk(const std::filesystem::path& folder, const std::filesystem::path& relative, int depth,
              std::vector<StorageKey>& keys);
  struct TreeStats {
    uint64_t bytes = 0;
    int64_t newest = 0;  // latest file modification, unix seconds
  };
  Result<TreeStats> tree_stats(const std::filesystem::path& folder, int depth);

  std::filesystem::path dir_;
  StoreOptions options_;
  Env& env_;
  std::string storage_id_;
  DurableBatch batch_;  // for prepare(): the temp folder, folders made durable one at a time
  std::mutex report_mutex_;

  void forget_verified(const StorageKey& prefix);
  // Under verified_mutex_: reads the file once; applies one line; appends a line
  // (rewriting the file when it has grown past what it lists); says once when the file
  // cannot be kept.
  void load_verified();
  void apply_verified(std::string_view line);
  void append_verified(const std::string& line);
  void verified_problem(const std::string& what);
  struct Verified {
    uint64_t document = 0;            // 8 bytes of the document id's SHA-256 (for ranges)
    std::array<uint8_t, 16> print{};  // 16 bytes of the fingerprint's SHA-256
  };
  std::mutex verified_mutex_;
  bool verified_loaded_ = false;
  bool verified_reported_ = false;
  std::unordered_map<uint64_t, Verified> verified_;  // hash of the key → its snapshot
  size_t verified_lines_ = 0;                        // in the file
};

}  // namespace gm::storage
