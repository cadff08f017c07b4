// Lexicon groups and their folders (DESIGN.md "Data folder", spec/atproto.md §1.2, §1.6).
//
// Usage:
//   GM_ASSIGN_OR_RETURN(auto groups, gm::storage::GroupRegistry::open(data_dir));
//   auto store = groups->open_group("xyz.groundmist.library");   // creates it on first use
//   if (!store.ok()) reply_400(store.error().message);            // invalid name, overlap, I/O
//   (*store)->load_range({doc_id});
//
// A group is named by an NSID prefix (the prototype's `lexiconAuthorityDomain`): at
// least 2 segments separated by '.', at most 317 characters in all, each segment 1–63
// characters of [A-Za-z0-9-] not starting or ending with '-', the first segment not
// starting with a digit (the atproto NSID domain-authority rules; a full NSID such as
// `xyz.groundmist.library` also qualifies). Its folder is the segments as nested
// folders: `xyz.groundmist.library` → `<data>/xyz/groundmist/library/`, holding a
// DocumentStore (document_store.h). No segment starts with '.', so `<data>/.groundmist/`
// (server state, quarantine) can never be a group.
//
// A folder is a group on disk when it contains `st/orage-adapter-id` (every
// automerge-repo store writes its storageId at start-up). open() walks the data folder
// to find them. Two groups may not overlap: a group whose folder would lie inside
// another group's folder, or contain one, is refused, as is a name that differs from
// an existing group only in letter case (the NSID authority is case-insensitive, and
// on a case-insensitive file system both would be one folder). Groups already
// overlapping on disk (e.g. created by the unvalidated prototype) are both refused,
// with an error naming the other.
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "storage/document_store.h"
#include "util/result.h"

namespace gm::storage {

// Error says which segment is wrong and why.
Status validate_group_name(std::string_view group);
// "xyz/groundmist/library" for "xyz.groundmist.library" (the name must be valid).
std::filesystem::path group_relative_folder(std::string_view group);

class GroupRegistry {
 public:
  struct Options {
    // Problems with files in any group (see StoreOptions::report); default: stderr.
    std::function<void(const StorageProblem&)> report;
    // For every system call of the registry and its stores (env.h); null = Env::posix().
    Env* env = nullptr;
  };

  // Finds the groups already in `data_dir` (created if missing). Fails if the data
  // folder itself is a store (then every group would lie inside it).
  static Result<std::unique_ptr<GroupRegistry>> open(std::filesystem::path data_dir, Options options);
  static Result<std::unique_ptr<GroupRegistry>> open(std::filesystem::path data_dir) {
    return open(std::move(data_dir), Options{});
  }

  // The store of `group`, opened once and shared; created when `create` and absent.
  Result<std::shared_ptr<DocumentStore>> open_group(std::string_view group, bool create = true);

  // Known groups (found on disk or created since), sorted.
  std::vector<std::string> groups() const;
  const std::filesystem::path& data_dir() const { return data_dir_; }
  // `<data>/.groundmist`: server state (secret.key, server.db, quarantine/).
  std::filesystem::path state_dir() const { return data_dir_ / ".groundmist"; }

 private:
  GroupRegistry(std::filesystem::path data_dir, Options options)
      : data_dir_(std::move(data_dir)),
        options_(std::move(options)),
        env_(options_.env ? *options_.env : Env::posix()) {}
  // Finds the groups below `folder`; inside a store only folders that are not document
  // shards are walked.
  void discover(const std::filesystem::path& folder, std::vector<std::string>& segments, bool inside_store);
  // A store in `folder` or below it, if any.
  std::optional<std::filesystem::path> store_below(const std::filesystem::path& folder, size_t depth);
  void find_overlaps();
  // Refusal message if `group` (not yet known) overlaps a known group or a store on disk.
  std::optional<std::string> overlap_error(std::string_view group);

  std::filesystem::path data_dir_;
  Options options_;
  Env& env_;
  mutable std::mutex mutex_;
  std::vector<std::string> known_;                        // groups on disk or created
  std::map<std::string, std::string> conflicts_;          // group → why it is refused
  std::map<std::string, std::shared_ptr<DocumentStore>> open_;
  std::set<std::string> opening_;  // being opened, without the lock
  std::condition_variable opened_;
};

}  // namespace gm::storage
