// The change graph of a document (spec/automerge.md §1.2–§1.4, §1.13): every applied
// change as the exact type-1 chunk bytes it arrived in (never re-encoded, since the
// hash covers those bytes), its hash and header fields, in application (topological)
// order, plus the queue of changes whose dependencies have not arrived yet.
//
// Changes are numbered by their position in application order (`ChangeGraph::Index`);
// a change's dependencies always have smaller indexes than the change. Chunk bytes
// live in one arena; hashes are found through an open-addressing table of indexes, so
// a 260k-change history costs a few flat arrays, not a node per change.
//
// Loading (§1.13): any concatenation of chunks. Change chunks (type 1, or type 2
// inflated to type 1) are added; a change whose dependencies are missing is queued and
// applied as soon as the last of them arrives; a change already applied or queued is
// ignored. A document chunk is expanded into its changes (doc_chunk.h) unless all of
// its heads are already known. Every call reports which changes it newly applied, in
// application order, so the caller (Document) can apply their ops.
#pragma once

#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "automerge/change.h"
#include "automerge/doc_chunk.h"

namespace gm::automerge {

using ChangeHashSet = std::unordered_set<ChangeHash, ChangeHashHasher>;

class ChangeGraph {
 public:
  using Index = uint32_t;

  ChangeGraph() = default;
  ChangeGraph(const ChangeGraph&) = default;
  ChangeGraph& operator=(const ChangeGraph&) = default;
  ChangeGraph(ChangeGraph&&) noexcept = default;
  ChangeGraph& operator=(ChangeGraph&&) noexcept = default;

  // --- Adding changes. Each appends the indexes of the changes it newly applied to
  // *applied (when non-null), in application order, including changes released from
  // the queue. On error, *applied still lists what was applied before the error.

  // Any concatenation of document, change and compressed-change chunks. The input is
  // parsed and every change header decoded before anything is applied, so malformed
  // input applies nothing.
  Status load(ByteView data, std::vector<Index>* applied = nullptr);
  // The same for data in several pieces (each a whole number of chunks), as one batch.
  Status load(std::span<const ByteView> pieces, std::vector<Index>* applied = nullptr);

  // One change chunk (type 1 or 2), checked like load().
  Status add_chunk(ByteView chunk, std::vector<Index>* applied = nullptr);

  // A change whose hash and header the caller has already computed (a change it just
  // built, or one rebuilt from a document chunk): `chunk` must be the type-1 chunk,
  // `hash` its chunk hash and `header` decode_change_header of its body. Not checked.
  Status add_change(ByteView chunk, const ChangeHash& hash, ChangeHeader header,
                    std::vector<Index>* applied = nullptr);

  // A document chunk already decoded and expanded (`expanded` = expand_document(doc)).
  // Into an empty graph, its changes are applied in the document's order and the
  // graph takes over the expanded buffer (no copy, no hash lookups); otherwise they
  // are loaded like any others. Reads doc's actors, heads and change rows, not its
  // ops: a caller done with them frees them first (they are most of its memory).
  Status load_document(const DecodedDocument& doc, ExpandedDocument expanded, std::vector<Index>* applied = nullptr);

  // A document chunk's body decoded and its changes rebuilt under this graph's limits
  // for input: rows and rebuilt bytes for the chunk's size, ops with what the graph
  // already holds (trusted input: at most kMaxStoredDocumentRows rows, nothing else). For
  // callers that read the decoded rows too before they hand both to load_document;
  // load() decodes the document chunks it is given with it.
  struct DecodedChunk {
    DecodedDocument doc;
    ExpandedDocument expanded;
  };
  Result<DecodedChunk> decode_document_chunk(ByteView body) const;

  // Makes room for `changes` more changes totalling `bytes` of chunk data.
  void reserve(size_t changes, size_t bytes);

  // --- Applied changes.
  size_t size() const { return hashes_.size(); }
  bool empty() const { return hashes_.empty(); }
  bool has(const ChangeHash& hash) const { return find(hash).has_value(); }
  bool has_all(std::span<const ChangeHash> hashes) const;
  std::optional<Index> find(const ChangeHash& hash) const;

  const ChangeHash& hash(Index i) const { return hashes_[i]; }
  const std::vector<ChangeHash>& hashes() const { return hashes_; }  // application order
  // The type-1 chunk. Valid until the next change is added.
  ByteView chunk(Index i) const { return ByteView(arena_).subspan(nodes_[i].offset, nodes_[i].length); }
  // Bytes of every change chunk together (applied or queued).
  size_t chunk_bytes() const { return arena_.size(); }
  // The chunks of `indexes` as one view when they lie back to back, in that order, in
  // the graph's storage (changes applied together do); otherwise empty.
  ByteView contiguous_chunks(std::span<const Index> indexes) const;
  const ActorId& actor(Index i) const { return actors_[nodes_[i].actor]; }
  // The change's author as an index into actors(), the graph's table in first-seen order.
  uint32_t actor_index(Index i) const { return nodes_[i].actor; }
  const std::vector<ActorId>& actors() const { return actors_; }
  // The highest seq among the actor's applied changes; 0 when it has none.
  uint64_t max_seq(ByteView actor) const;
  uint64_t seq(Index i) const { return nodes_[i].seq; }
  uint64_t start_op(Index i) const { return nodes_[i].start_op; }
  // Indexes of the change's dependencies, in the order of its deps list (hash order).
  std::span<const Index> deps(Index i) const {
    return std::span<const Index>(dep_indexes_).subspan(nodes_[i].deps_begin, nodes_[i].deps_count);
  }

  // Changes no other applied change depends on, sorted by hash.
  const std::vector<ChangeHash>& heads() const { return heads_; }

  // Ops in the applied changes (delete ops included). A document holds at most
  // max_ops: a few bytes of run-length columns can claim millions of ops, which every
  // peer that loads the document would then have to build. A change that would take
  // the graph past it is refused, from its op count, and reported as an error.
  uint64_t op_count() const { return ops_; }
  void set_max_ops(uint64_t ops) { max_ops_ = ops; }
  uint64_t max_ops() const { return max_ops_; }

  // Input is limited by default (max_ops, and a document chunk may claim at most
  // document_row_limit() rows for its size): that is for what peers send. Trusted
  // input has neither limit, only kMaxStoredDocumentRows per document chunk: documents read
  // back from storage load whatever their size (they may predate the limits, and npm
  // saves a long list of equal values denser than a peer may send it), as do npm's
  // graphs, which have no limits.
  void set_trusted(bool trusted) { trusted_ = trusted; }
  bool trusted() const { return trusted_; }

  // --- Queue.
  // Queued chunk bytes are bounded (a peer could otherwise send changes whose
  // dependencies never come, without end): a change that would exceed the bound is
  // not queued, and the call that brought it reports an error.
  static constexpr size_t kDefaultMaxQueuedBytes = size_t{256} << 20;
  void set_max_queued_bytes(size_t bytes) { max_queued_bytes_ = bytes; }
  size_t queued_bytes() const { return queued_bytes_; }
  size_t queued_count() const { return queue_index_.size(); }
  bool is_queued(const ChangeHash& hash) const { return queue_index_.count(hash) != 0; }
  // Hashes of the queued changes, in arrival order.
  std::vector<ChangeHash> queued_hashes() const;
  // Their chunks, in the same order.
  std::vector<ByteView> queued_chunks() const;

  // Walking back from `start` through applied-or-queued changes, the first hashes on
  // each path that are neither applied nor queued; sorted. (Automerge main's rule for
  // the sync `need`, §2.4 step 2.)
  std::vector<ChangeHash> missing_deps_from(std::span<const ChangeHash> start) const;
  // missing_deps_from(every queued change ∪ heads): Automerge.getMissingDeps(doc, heads).
  std::vector<ChangeHash> missing_deps(std::span<const ChangeHash> heads = {}) const;

  // --- Ancestry. Hashes in `heads` that are not applied are ignored.

  // Applied changes that are not ancestors-or-self of `heads`, in application order.
  // Empty `heads` (or none known) gives every change. Costs time proportional to the
  // changes found plus the width of the graph between them and `heads`, not to the
  // size of the history.
  std::vector<Index> changes_since(std::span<const ChangeHash> heads) const;

  // Whether `ancestor` is `descendant` or one of its (transitive) dependencies.
  bool is_ancestor(Index ancestor, Index descendant) const;

  // Removes from `hashes` every hash that is an ancestor-or-self of `heads`.
  void remove_ancestors(ChangeHashSet& hashes, std::span<const ChangeHash> heads) const;

 private:
  struct Node {
    uint64_t offset = 0;  // chunk bytes in arena_
    uint32_t length = 0;
    uint32_t actor = 0;  // into actors_
    uint64_t seq = 0;
    uint64_t start_op = 0;
    uint32_t deps_begin = 0;  // into dep_indexes_
    uint32_t deps_count = 0;
  };
  // The header fields the graph keeps, as views into a chunk (or a ChangeHeader).
  struct HeaderRef {
    ByteView deps;  // count × 32 bytes
    ByteView actor;
    uint64_t seq = 0;
    uint64_t start_op = 0;
    size_t dep_count() const { return deps.size() / 32; }
    ChangeHash dep(size_t i) const { return ChangeHash::from_bytes(deps.subspan(32 * i, 32)); }
  };
  // A change waiting for dependencies; its header is read again from `chunk`.
  struct Pending {
    Bytes chunk;
    ChangeHash hash;
    uint32_t missing = 0;  // dependencies not applied yet
    bool waiting = false;  // false once released
  };
  // A change ready to be checked and applied.
  struct Incoming {
    ByteView chunk;
    ChangeHash hash;
    HeaderRef header;
  };

  Status add_incoming(std::vector<Incoming>& incoming, std::vector<Index>* applied);
  // Applies a change whose dependencies are all applied; then releases waiters.
  Status apply_ready(const Incoming& change, std::vector<Index>* applied);
  Status apply_one(const Incoming& change, std::vector<Index>* applied);
  void update_heads();
  uint32_t intern_actor(ByteView actor);
  Error too_many_ops(const ChangeHash& hash, uint64_t ops) const;
  // The op limit in force: max_ops, or none for trusted input.
  uint64_t op_limit() const { return trusted_ ? UINT64_MAX : max_ops_; }
  // Rows a document chunk of `body_size` bytes may claim (decode_document), and bytes
  // its changes may take rebuilt (expand_document).
  size_t row_limit(size_t body_size) const;
  size_t expansion_limit(size_t body_size) const;
  // What the document chunks of one load() may still claim together: decoded rows, ops
  // and rebuilt bytes.
  struct ChunkBudget {
    size_t rows;
    uint64_t ops;
    size_t bytes;
  };
  Result<DecodedChunk> decode_document_chunk(ByteView body, ChunkBudget& budget) const;
  static Result<HeaderRef> read_header_ref(ByteView body);
  static Result<HeaderRef> pending_header(const Pending& p);
  void table_insert(Index i);
  void table_rehash(size_t entries);
  std::vector<Index> known_indexes(std::span<const ChangeHash> hashes) const;

  Bytes arena_;
  std::vector<Node> nodes_;
  std::vector<ChangeHash> hashes_;
  std::vector<Index> dep_indexes_;
  std::vector<ChangeHash> heads_;
  std::vector<Index> unmerged_heads_;  // applied since heads_ was last updated
  // Open addressing, linear probing: 0 = empty, else index + 1. Size a power of two.
  std::vector<uint32_t> table_;

  std::vector<ActorId> actors_;
  std::unordered_map<std::string, uint32_t> actor_index_;
  std::vector<uint64_t> max_seq_;  // per actor
  uint32_t last_actor_ = UINT32_MAX;

  // Queue: slots of pending changes (emptied once released), by hash, and which
  // pending slots wait on each missing hash.
  std::vector<Pending> queue_;
  size_t queued_bytes_ = 0;
  size_t max_queued_bytes_ = kDefaultMaxQueuedBytes;
  uint64_t ops_ = 0;
  uint64_t max_ops_ = kMaxDocumentRows;
  bool trusted_ = false;
  std::unordered_map<ChangeHash, size_t, ChangeHashHasher> queue_index_;
  std::unordered_map<ChangeHash, std::vector<size_t>, ChangeHashHasher> waiting_on_;
};

}  // namespace gm::automerge
