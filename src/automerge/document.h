// An Automerge document: its change graph (history, heads, sync) and its op set
// (current state, JSON view), kept together. This is the engine's top-level API.
//
// Loading a document chunk takes a fast path: the op set is built straight from the
// chunk's ops (already in document order) and the change graph from the changes the
// chunk expands into, so no change is applied op by op. Change chunks are applied
// to both in causal order.
#pragma once

#include <map>
#include <nlohmann/json.hpp>

#include "automerge/change_graph.h"
#include "automerge/op_set.h"
#include "automerge/sync.h"

namespace gm::automerge {

class Document {
 public:
  Document() = default;

  // Loads any concatenation of document and change chunks (a saved file, a storage
  // folder's blobs, or both). Changes whose dependencies are missing are queued.
  // `trusted`: without the limits on what peers send (ChangeGraph::set_trusted), for
  // what a store already holds.
  static Result<Document> load(ByteView data, bool trusted = false);

  // Adds chunks to the document (load_incremental). Appends the graph indexes of the
  // newly applied changes to *applied when non-null.
  Status apply(ByteView data, std::vector<ChangeGraph::Index>* applied = nullptr);

  const std::vector<ChangeHash>& heads() const { return graph_.heads(); }
  // Every applied change chunk, in application order.
  std::vector<ByteView> changes() const;
  // Document chunk equal to Automerge.save() (columns DEFLATEd when compress).
  Bytes save(bool compress = true) const;
  // The JSON view, as Automerge.toJS() would give it (see op_set.h for value types).
  nlohmann::json to_json() const { return op_set_.to_json(); }

  const ChangeGraph& graph() const { return graph_; }

  // The JSON view as of `heads` (Automerge.view(doc, heads) then toJS): the view of
  // a document holding only those changes and their ancestors. Rebuilt from those
  // changes, so it costs a load of them. Empty heads give the empty document ({}).
  // Errors (kNotFound) when a head is not an applied change.
  Result<nlohmann::json> to_json_at(std::span<const ChangeHash> heads) const;

  // The largest op counter of any applied change (0 for an empty document): a new
  // change starts at max_op() + 1.
  uint64_t max_op() const { return max_op_; }

  // Sync protocol (§2.4, §2.5). An empty optional means there is nothing to send.
  // Whole-document (V2) sends use save() unless options.save_document is set.
  std::optional<Bytes> generate_sync_message(SyncState& state, SyncOptions options = {}) const;
  // Changes the message carries are applied to the graph and the op set; the graph
  // indexes of the newly applied ones are appended to *applied when non-null.
  Status receive_sync_message(SyncState& state, ByteView message,
                              std::vector<ChangeGraph::Index>* applied = nullptr);
  const OpSet& op_set() const { return op_set_; }

 private:
  // What save() needs of each change that the graph does not keep.
  struct ChangeMeta {
    uint64_t max_op = 0;
    int64_t time = 0;
  };

  Status apply_document_chunk(ByteView body, std::vector<ChangeGraph::Index>* applied);
  Status apply_changes(std::span<const ChangeGraph::Index> indexes);
  // message: nullptr = none.
  void record_meta(ChangeGraph::Index i, uint64_t max_op, int64_t time, const std::string* message, ByteView extra);

  ChangeGraph graph_;
  OpSet op_set_;
  std::vector<ChangeMeta> meta_;                             // by graph index
  std::map<ChangeGraph::Index, std::string> messages_;       // sparse, non-empty messages
  std::vector<bool> empty_message_;                          // by graph index: message is 
  std::map<ChangeGraph::Index, Bytes> extra_;                // sparse
  uint64_t max_op_ = 0;
};

}  // namespace gm::automerge
