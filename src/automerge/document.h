// An Automerge document: its change graph (history, heads, sync) and its op set
// (current state, JSON view), kept together. This is the engine's top-level API.
#pragma once

#include <nlohmann/json.hpp>

#include "automerge/change_graph.h"
#include "automerge/op_set.h"
#include "automerge/sync.h"

namespace gm::automerge {

class Document {
 public:
  // Loads any concatenation of document and change chunks (a saved file, a storage
  // folder's blobs, or both). Changes whose dependencies are missing are queued.
  static Result<Document> load(ByteView data);

  // Adds chunks to an existing document (load_incremental).
  Status apply(ByteView data);

  std::vector<ChangeHash> heads() const;
  // Every applied change chunk, in application order.
  std::vector<ByteView> changes() const;
  // Document chunk equal to Automerge.save() (columns DEFLATEd when compress).
  Bytes save(bool compress = true) const;
  // The JSON view, as Automerge.toJS() would give it.
  nlohmann::json to_json() const;

  const ChangeGraph& graph() const { return graph_; }

  // Sync protocol (§2.4, §2.5). An empty optional means there is nothing to send.
  std::optional<Bytes> generate_sync_message(SyncState& state) const;
  Status receive_sync_message(SyncState& state, ByteView message);

 private:
  ChangeGraph graph_;
  OpSet op_set_;
};

}  // namespace gm::automerge
