#include "storage/group_registry.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>

#include "storage/durable_file.h"
#include "util/text.h"

namespace gm::storage {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxGroupLength = 317;
constexpr size_t kMaxSegmentLength = 63;
// Deeper than any valid group (317 characters / 2 per segment).
constexpr size_t kMaxSegments = 160;

std::vector<std::string_view> split_segments(std::string_view group) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t dot = group.find('.', start);
    out.push_back(group.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}


bool valid_segment_chars(std::string_view s) {
  return !s.empty() && s.size() <= kMaxSegmentLength && s.front() != '-' && s.back() != '-' &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

// Whether group `inner` is `outer` followed by more segments (case-insensitive).
bool lies_inside(const std::string& inner, const std::string& outer) {
  std::string li = ascii_lower(inner), lo = ascii_lower(outer);
  return li.size() > lo.size() && li.compare(0, lo.size(), lo) == 0 && li[lo.size()] == '.';
}

bool has_storage_id(Env& env, const fs::path& folder) {
  struct stat st {};
  return env.lstat((folder / "st" / "orage-adapter-id").c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

Status validate_group_name(std::string_view group) {
  auto bad = [&](const std::string& why) {
    return error("invalid group name \"" + std::string(group.substr(0, 80)) + "\": " + why +
                 " (expected an NSID prefix such as xyz.groundmist.library)");
  };
  if (group.empty()) return bad("it is empty");
  if (group.size() > kMaxGroupLength) return bad("longer than " + std::to_string(kMaxGroupLength) + " characters");
  auto segments = split_segments(group);
  if (segments.size() < 2) return bad("it needs at least 2 segments separated by '.'");
  for (size_t i = 0; i < segments.size(); ++i) {
    std::string_view s = segments[i];
    std::string which = "segment " + std::to_string(i + 1) + " \"" + std::string(s.substr(0, 80)) + "\"";
    if (s.empty()) return bad("segment " + std::to_string(i + 1) + " is empty");
    if (s.size() > kMaxSegmentLength) return bad(which + " is longer than " + std::to_string(kMaxSegmentLength) + " characters");
    if (!std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; })) {
      return bad(which + " may contain only ASCII letters, digits and '-'");
    }
    if (s.front() == '-' || s.back() == '-') return bad(which + " starts or ends with '-'");
    if (i == 0 && std::isdigit(static_cast<unsigned char>(s.front()))) return bad(which + " (the first) starts with a digit");
  }
  return Status::Ok();
}

fs::path group_relative_folder(std::string_view group) {
  fs::path p;
  for (auto s : split_segments(group)) p /= std::string(s);
  return p;
}

Result<std::unique_ptr<GroupRegistry>> GroupRegistry::open(fs::path data_dir, Options options) {
  data_dir = data_dir.lexically_normal();
  if (!data_dir.has_filename() && data_dir.has_parent_path()) data_dir = data_dir.parent_path();  // "data/" → "data"
  Env& env = options.env ? *options.env : Env::posix();
  if (auto st = create_directories_durably(env, data_dir); !st.ok()) return context("opening data folder", st.error());
  if (has_storage_id(env, data_dir)) {
    return error("data folder " + data_dir.string() +
                 " is itself an automerge-repo store (it has st/orage-adapter-id); groups live in folders below "
                 "it (e.g. xyz/groundmist/library/): move that store into its group's folder");
  }
  std::unique_ptr<GroupRegistry> registry(new GroupRegistry(std::move(data_dir), std::move(options)));
  std::vector<std::string> segments;
  registry->discover(registry->data_dir_, segments, /*inside_store=*/false);
  std::sort(registry->known_.begin(), registry->known_.end());
  registry->find_overlaps();
  return registry;
}

void GroupRegistry::discover(const fs::path& folder, std::vector<std::string>& segments, bool inside_store) {
  if (segments.size() >= kMaxSegments) return;
  std::vector<Env::Entry> entries;
  if (env_.list(folder.c_str(), entries) != 0) {
    if (options_.report && !inside_store) {
      options_.report({folder, errno_error("cannot list folder", folder, errno).message + " while looking for groups",
                       std::nullopt});
    }
    return;
  }
  for (const Env::Entry& e : entries) {
    if (!valid_segment_chars(e.name) || e.type != Env::Entry::kFolder) continue;
    const fs::path path = folder / e.name;
    const bool store = has_storage_id(env_, path);
    // Inside a store, the two-character folders are document shards (and `st/`): they
    // are only checked for being a store themselves (at most 58² stats), never walked,
    // which keeps start-up time independent of the number of documents. The price: a
    // nested group below a two-character segment that is not its last goes unnoticed.
    if (inside_store && e.name.size() == 2 && !store) continue;
    segments.push_back(e.name);
    std::string group;
    for (const auto& seg : segments) group += (group.empty() ? "" : ".") + seg;
    if (store && validate_group_name(group).ok()) known_.push_back(group);
    // Keep descending, also into groups: a group nested in another must be found.
    discover(path, segments, store);
    segments.pop_back();
  }
}

void GroupRegistry::find_overlaps() {
  for (const auto& a : known_) {
    for (const auto& b : known_) {
      if (a == b) continue;
      if (lies_inside(a, b)) {
        conflicts_[a] = "group " + a + " lies inside the folder of group " + b + "; move one of them";
        conflicts_[b] = "group " + b + " contains the folder of group " + a + "; move one of them";
      } else if (ascii_lower(a) == ascii_lower(b)) {
        conflicts_[a] = "groups " + a + " and " + b + " differ only in letter case; merge or rename one";
      }
    }
  }
}

std::optional<std::string> GroupRegistry::overlap_error(std::string_view group_view) {
  // Clients see this message: folders are named relative to the data folder, which
  // stays private.
  std::string group(group_view);
  for (const auto& k : known_) {
    if (ascii_lower(k) == ascii_lower(group)) {
      return "group " + group + " differs only in letter case from existing group " + k + "; use " + k;
    }
    if (lies_inside(group, k)) {
      return "group " + group + " would lie inside the folder of existing group " + k + " (<data>/" +
             group_relative_folder(k).string() + ")";
    }
    if (lies_inside(k, group)) {
      return "group " + group + " would contain the folder of existing group " + k + " (<data>/" +
             group_relative_folder(k).string() + ")";
    }
  }
  // Stores created on disk since open() (e.g. by another server on the same folder).
  fs::path folder = data_dir_ / group_relative_folder(group);
  for (fs::path p = folder.parent_path(); p != data_dir_ && p.has_relative_path(); p = p.parent_path()) {
    if (has_storage_id(env_, p)) {
      return "group " + group + " would lie inside the store at <data>/" + p.lexically_relative(data_dir_).string();
    }
  }
  if (auto inner = store_below(folder, 0)) {
    return "group " + group + " would contain the store at <data>/" + inner->lexically_relative(data_dir_).string();
  }
  return std::nullopt;
}

std::optional<fs::path> GroupRegistry::store_below(const fs::path& folder, size_t depth) {
  std::vector<Env::Entry> entries;
  if (depth > kMaxSegments || env_.list(folder.c_str(), entries) != 0) return std::nullopt;
  for (const Env::Entry& e : entries) {
    if (e.type != Env::Entry::kFolder) continue;
    if (has_storage_id(env_, folder / e.name)) return folder / e.name;
    if (auto inner = store_below(folder / e.name, depth + 1)) return inner;
  }
  return std::nullopt;
}

Result<std::shared_ptr<DocumentStore>> GroupRegistry::open_group(std::string_view group_view, bool create) {
  GM_TRY(validate_group_name(group_view));
  std::string group(group_view);
  std::unique_lock<std::mutex> lock(mutex_);
  // Opening a store flushes its file system: no lock is held meanwhile (other groups'
  // opens go on), but a second opener of the same group waits for the first.
  opened_.wait(lock, [&] { return !opening_.count(group); });
  if (auto it = open_.find(group); it != open_.end()) return it->second;
  if (auto it = conflicts_.find(group); it != conflicts_.end()) return error(it->second);
  const bool known = std::binary_search(known_.begin(), known_.end(), group);
  if (!known) {
    if (auto why = overlap_error(group)) return error(*why);
    if (!create) return error("no group " + group + " in " + data_dir_.string());
    // Known from now on, so that no overlapping group is opened meanwhile.
    known_.insert(std::upper_bound(known_.begin(), known_.end(), group), group);
  }
  opening_.insert(group);
  lock.unlock();
  StoreOptions opts;
  opts.quarantine_dir = state_dir() / "quarantine" / group;
  opts.verified_file = state_dir() / "verified" / group;
  opts.report = options_.report;
  opts.env = &env_;
  auto store = DocumentStore::open(data_dir_ / group_relative_folder(group), opts);
  lock.lock();
  opening_.erase(group);
  opened_.notify_all();
  if (!store.ok()) {
    if (!known) known_.erase(std::lower_bound(known_.begin(), known_.end(), group));
    return context("group " + group, store.error());
  }
  std::shared_ptr<DocumentStore> shared = std::move(*store);
  open_[group] = shared;
  return shared;
}

std::vector<std::string> GroupRegistry::groups() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return known_;
}

}  // namespace gm::storage
