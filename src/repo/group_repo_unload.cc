// Unloading (group_repo.h): documents no peer has used for idle_unload leave memory,
// and those whose files are worth merging are compacted into one snapshot first, as a
// job on the document's slot (the work itself is GroupRepo::compact, in
// group_repo_work.cc).
#include "repo/group_repo.h"

namespace gm::repo {

bool GroupRepo::worth_compacting(const Doc& doc) {
  // Worth it when several files hold the document, or one large file of changes (a
  // document chunk is far smaller); safe only when every stored change is applied (a
  // queued change lives only in its incremental file).
  constexpr size_t kCompactSingleFileBytes = 64 * 1024;
  bool worth = doc.files.size() > 1 || (doc.snapshot_bytes == 0 && doc.incremental_bytes >= kCompactSingleFileBytes);
  return worth && doc.graph.queued_count() == 0 && !doc.graph.empty();
}

void GroupRepo::compact_unloaded(const std::string& document_id, Slot& slot) {
  auto job = std::make_shared<Job>();
  job->document_id = document_id;
  job->compact = true;
  job->doc = std::move(slot.doc);
  run_job(Lane::kSlow, slot, std::move(job));
}

void GroupRepo::unload_idle(Clock::time_point now) {
  std::vector<std::string> idle;
  for (auto& [id, slot] : slots_) {
    if (slot.busy || !slot.doc || now - slot.last_used < options_.idle_unload) continue;
    bool watched = false;
    for (const auto& [peer_id, conn] : slot.watchers) {
      auto p = peers_.find(peer_id);
      watched = watched || (p != peers_.end() && p->second == conn);
    }
    if (!watched) idle.push_back(id);
  }
  for (const std::string& id : idle) {
    orphan_bytes_.erase(id);
    Slot& slot = slots_[id];
    if (worth_compacting(*slot.doc)) {
      compact_unloaded(id, slot);  // the slot goes once it is done
    } else {
      slots_.erase(id);
    }
  }
  stats_.documents_loaded = static_cast<int64_t>(slots_.size());
}

void GroupRepo::flush() {
  // At shutdown, once no job or commit is under way: compaction runs here, and the
  // server stops once this returns.
  for (auto& [id, slot] : slots_) {
    if (slot.busy || !slot.doc || !worth_compacting(*slot.doc)) continue;
    Result<size_t> s = compact(id, *slot.doc);
    if (!s) log_.warn("group " + group_ + ": compacting " + id + " failed: " + s.error().message);
  }
  slots_.clear();
  orphan_bytes_.clear();
  stats_.documents_loaded = 0;
}

}  // namespace gm::repo
