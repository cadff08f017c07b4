// Document chunks (type 0) (spec/automerge.md §1.9–§1.11): decoding, expansion into
// the change chunks they summarise, and encoding.
//
// Body layout:
//   actors              uLEB n, each uLEB length + bytes, sorted (= the change authors)
//   heads               uLEB n, n × 32-byte hashes, sorted
//   change col. meta    §1.5: uLEB count, (spec, length) pairs
//   op col. meta        §1.5
//   change col. data    one row per change, in a topological (application) order
//   op col. data        one row per stored op, in document order (§1.10)
//   heads index         one uLEB per head: its row in the change columns (absent in
//                       files written by old implementations)
//
// Change columns (spec hex): actor 01, seq delta 03, maxOp delta 13, time delta 23,
// message string 35, deps group 40 + dep row index delta 43, extra bytes value 56/57.
// Op columns: obj actor/counter 01/02, key actor/counter(delta)/string 11/13/15,
// id actor/counter(delta) 21/23, insert 34, action 42, value 56/57, succ group/actor/
// counter(delta) 80/81/83, expand 94, mark name a5.
// Spec bit 3 set = that column's data is raw DEFLATE. Delete ops are not stored; an
// op's succ list names them (§1.11 rebuilds them).
#pragma once

#include "automerge/change.h"

namespace gm::automerge {

// Columns at least this long are DEFLATEd by Automerge.save() (Rust DEFLATE_MIN_SIZE;
// checked against npm 3.5.0: 255 bytes stay plain, 256 are compressed).
inline constexpr size_t kDeflateMinColumnSize = 256;

// A document chunk in decoded form. OpId::actor indexes `actors`, which are sorted, so
// comparing (counter, actor index) is the Lamport order.
struct DecodedDocument {
  // One change. Its variable-length parts live in the document's side tables (a
  // 260k-change history is a few flat arrays, not several allocations per change).
  struct ChangeRow {
    uint32_t actor = 0;
    uint32_t deps_count = 0;
    uint64_t seq = 0;
    uint64_t max_op = 0;
    int64_t time = 0;
    uint32_t deps_begin = 0;  // into change_deps
    // Into messages / extras, or kNone. An explicit empty message is kept as "": npm
    // keeps a change's `message: ""` in document chunks (though a change chunk cannot
    // tell it from none), and older implementations wrote "" for every change without
    // one. No extra bytes and empty extra bytes are the same.
    uint32_t message = kNone;
    uint32_t extra = kNone;
  };
  static constexpr uint32_t kNone = UINT32_MAX;

  // Bytes in `text`; size kNone = absent.
  struct TextRef {
    uint32_t offset = 0;
    uint32_t size = kNone;
    bool present() const { return size != kNone; }
  };
  // An op id in a row: counters are at most kMaxOpCounter (decode refuses more, as
  // npm does), so they are kept in 32 bits, 8 bytes an id instead of OpId's 16.
  struct RowId {
    uint32_t counter = 0;
    uint32_t actor = 0;
    RowId() = default;
    RowId(uint32_t c, uint32_t a) : counter(c), actor(a) {}
    // The counter must be at most kMaxOpCounter.
    explicit RowId(const OpId& id) : counter(static_cast<uint32_t>(id.counter)), actor(id.actor) {}
    operator OpId() const { return OpId{counter, actor}; }
    bool operator==(const RowId&) const = default;
    bool is_root() const { return counter == 0; }
  };
  // One op, with its strings in `text` and its succ list in `succs` (a 260k-op
  // document is a few flat arrays; an Op would be 240 bytes and an allocation or two).
  // 64 bytes: a document of millions of ops is mostly these rows while it loads.
  struct OpRow {
    RowId id;
    RowId obj;            // counter 0 = the root map
    RowId elem;           // sequence ops: the element (counter 0 = HEAD)
    // The value: for a uint, int, counter, timestamp or f64 (has_scalar) its bits,
    // else where its bytes are (strings, bytes, unknown types; none for the others),
    // as value_bytes() reads it.
    uint64_t value_bits = 0;
    TextRef key;          // map ops: the key; absent for sequence ops
    TextRef mark_name;
    uint32_t succ_begin = 0;  // into succs
    uint32_t succ_count = 0;
    uint32_t action = 1;     // an Action; unknown codes are kept as they are (decode refuses 2^32 and more)
    uint8_t value_type = 0;  // a ValueType, or 10..15 for unknown types
    bool insert = false;
    bool expand = false;
    bool is_map() const { return key.present(); }
    bool has_scalar() const { return is_scalar_type(value_type); }
    TextRef value_bytes() const {
      return has_scalar() ? TextRef{} : TextRef{static_cast<uint32_t>(value_bits), static_cast<uint32_t>(value_bits >> 32)};
    }
    void set_value_bytes(TextRef r) { value_bits = r.offset | uint64_t{r.size} << 32; }
  };

  static_assert(sizeof(OpRow) <= 64, "an op row is most of a large document's memory while it loads");

  // A column this implementation does not know: kept (inflated, deflate bit clear) so
  // that encoding reproduces it.
  struct UnknownColumn {
    uint32_t spec = 0;
    Bytes data;
    bool operator==(const UnknownColumn&) const = default;
  };

  std::vector<ActorId> actors;
  std::vector<ChangeHash> heads;
  std::vector<ChangeRow> changes;  // topological (application) order
  std::vector<uint32_t> change_deps;  // each row's deps: rows of earlier changes, in hash order
  std::vector<std::string> messages;
  std::vector<Bytes> extras;
  // Ops in document order (§1.10), each with its SUCC list, as stored (Automerge sorts
  // it in Lamport order). Delete ops are not stored.
  std::vector<OpRow> ops;
  std::vector<RowId> succs;
  Bytes text;
  // Row of each head in `changes`, parallel to `heads`; empty when the file had none
  // (encode_document then writes none).
  std::vector<uint64_t> heads_index;
  std::vector<UnknownColumn> unknown_change_columns;
  std::vector<UnknownColumn> unknown_op_columns;

  std::span<const uint32_t> deps(const ChangeRow& c) const {
    return std::span<const uint32_t>(change_deps).subspan(c.deps_begin, c.deps_count);
  }
  const std::string* message(const ChangeRow& c) const { return c.message == kNone ? nullptr : &messages[c.message]; }
  ByteView extra(const ChangeRow& c) const { return c.extra == kNone ? ByteView() : ByteView(extras[c.extra]); }
  // Appends a change row (message nullptr = none).
  ChangeRow& add_change(uint32_t actor, uint64_t seq, uint64_t max_op, int64_t time,
                        std::span<const uint32_t> deps = {}, const std::string* message = nullptr,
                        ByteView extra = {});
  // Replaces a row's deps (the old entries stay in change_deps, unused).
  void set_deps(ChangeRow& c, std::span<const uint32_t> deps);

  std::string_view text_of(TextRef r) const {
    return r.present() ? std::string_view(reinterpret_cast<const char*>(text.data()) + r.offset, r.size)
                       : std::string_view();
  }
  std::span<const RowId> succ(const OpRow& op) const {
    return std::span<const RowId>(succs).subspan(op.succ_begin, op.succ_count);
  }
  Value value(const OpRow& op) const;
  // The same into `out`, whose string keeps its capacity (for loops over many ops).
  void value_into(const OpRow& op, Value& out) const;
  // The op as an Op, its succ list in `pred`.
  Op op(size_t i) const;
  // Appends an op given as an Op (its succ list in `pred`); refuses counters and action
  // codes a row cannot hold (as decode does).
  Status add_op(const Op& op);
  // Replaces op i (its old strings and succs stay in the tables, unused); refuses as add_op.
  Status set_op(size_t i, const Op& op);
  void set_succ(OpRow& op, std::span<const OpId> succ);
  // Frees the ops and their tables, for a caller done with them (they are most of the
  // memory; the change rows stay).
  void release_ops() {
    std::vector<OpRow>().swap(ops);
    std::vector<RowId>().swap(succs);
    Bytes().swap(text);
  }
};

bool operator==(const DecodedDocument& a, const DecodedDocument& b);

// Decodes a document chunk body (DEFLATEd columns are inflated). Checks actor and
// dependency indexes (a dep must name an earlier row), required fields, op ids,
// keys and the heads index; does not check hashes (expand_document does). Refuses,
// as npm 3.5.0 does, op counters and maxOps past kMaxOpCounter, and a mark end that
// does not follow its mark begin in the same object.
// Run-length columns let a few bytes claim billions of rows, so the number of
// change rows, op rows, deps and succ entries is each capped at `max_rows`; 0 means
// kMaxRowsPerBodyByte per body byte (plus kMinRowLimit), and at most kMaxDocumentRows
// (16 times the 260k-change benchmark). Typed text holds about 2 rows per byte, but
// uniform changes made in a loop hold far more (npm saves a counter incremented
// 100,000 times within one second, 100,001 change rows and as many op rows, in 306
// bytes: 340 per byte each); 512 per byte leaves room above that while a 4 KB chunk
// cannot claim kMaxDocumentRows. A chunk claiming more change or op rows is refused
// before any row is decoded.
inline constexpr size_t kMaxRowsPerBodyByte = 512;
inline constexpr size_t kMinRowLimit = 4096;
inline constexpr size_t kMaxDocumentRows = size_t{1} << 22;
// The ceiling for documents read back from storage, which are the owner's and may come
// from npm, which has no limit: a single npm change can splice in 4 million characters
// (4 million op rows, in a 4 KB snapshot). Four times kMaxDocumentRows: at most about
// 1.7 GB of decoded rows.
inline constexpr size_t kMaxStoredDocumentRows = 4 * kMaxDocumentRows;
Result<DecodedDocument> decode_document(ByteView body, size_t max_rows = 0);
// The row limit decode_document applies when max_rows is 0, with `ceiling` in place of
// kMaxDocumentRows.
size_t document_row_limit(size_t body_size, uint64_t ceiling = kMaxDocumentRows);

// Whether the op rows are in the order a document chunk must hold them (§1.10):
// objects (root, then Lamport order), map ops by key bytes then op id, sequence
// elements in RGA order (each element's non-insert ops after it, by op id). The changes
// a chunk expands into are fixed by their hashes, but a loader takes this order as
// the document's state, so a chunk whose rows are out of order loads into another
// state than its changes make. Sound, not complete: a document in which an element
// was inserted after an element with a later id (histories written by some old
// clients) is reported as not canonical, and should be handled as changes.
bool has_canonical_op_order(const DecodedDocument& doc);

// Checks that every index and table reference of a decoded document is in range
// (actors, earlier change rows, deps, messages, extras, text, succs). decode_document
// guarantees it; a document built or edited in memory might not, and the functions
// that read its rows (expand_document, OpSet::from_document) check it first.
Status check_document_indexes(const DecodedDocument& doc);

// Just the heads of a document chunk body, without decoding its columns (to decide
// whether expanding it can add anything, or what it covers). Not checked against the
// changes: only expand_document does that.
Result<std::vector<ChangeHash>> document_heads(ByteView body);

// One change chunk rebuilt from a document: a view into its ExpandedDocument.
struct RebuiltChange {
  ByteView chunk;  // a type-1 chunk
  ChangeHash hash;
  uint64_t start_op = 0;
};

// Every change chunk of a document (or a bundle, bundle.h), rebuilt back to back in one buffer, with their
// hashes and start ops in parallel arrays (a 260k-change history is a few
// allocations, not several per change).
class ExpandedDocument {
 public:
  size_t size() const { return hashes_.size(); }
  RebuiltChange operator[](size_t i) const {
    const size_t begin = i == 0 ? 0 : ends_[i - 1];
    return RebuiltChange{ByteView(bytes_).subspan(begin, ends_[i] - begin), hashes_[i], start_ops_[i]};
  }
  struct Iterator {
    const ExpandedDocument* doc;
    size_t i;
    RebuiltChange operator*() const { return (*doc)[i]; }
    Iterator& operator++() { return ++i, *this; }
    bool operator!=(const Iterator& o) const { return i != o.i; }
  };
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, size()}; }
  // Every chunk, in order, as one concatenation.
  ByteView chunks() const { return bytes_; }
  // Hands the buffers over (ChangeGraph::load_document), leaving this empty.
  void release(Bytes& bytes, std::vector<ChangeHash>& hashes) {
    bytes = std::move(bytes_);
    hashes = std::move(hashes_);
    ends_.clear();
    start_ops_.clear();
  }

 private:
  friend Result<ExpandedDocument> expand_document(const DecodedDocument& doc, size_t max_bytes);
  friend Result<ExpandedDocument> expand_bundle(ByteView body, size_t max_rows, size_t max_bytes);
  Bytes bytes_;
  std::vector<size_t> ends_;  // of each chunk in bytes_
  std::vector<ChangeHash> hashes_;
  std::vector<uint64_t> start_ops_;
};

// Rebuilds every change chunk of the document byte for byte (§1.11), in the order
// of `doc.changes`, and checks that the changes no other change depends on are
// exactly `doc.heads` (and that `heads_index`, when present, points at them). Fails
// once the rebuilt chunks pass `max_bytes`.
Result<ExpandedDocument> expand_document(const DecodedDocument& doc, size_t max_bytes = SIZE_MAX);

// What the changes of a document chunk of `body_size` bytes from a peer may take
// rebuilt. Its rows are bounded per byte (document_row_limit), but each rebuilt change
// repeats whatever strings it names (its author's id from the actor table, a message
// or mark name from a run-length column), which a hostile chunk of a few KB can make
// long enough to claim gigabytes. 64 KiB per body byte (the densest real documents
// we know rebuild to about 36 KB per byte: that counter, 100,000 changes of ~105
// bytes), at least 16 MiB, at most 1 GiB.
size_t document_expansion_limit(size_t body_size);

// Streaming writers for the two column tables, for callers that produce rows one at
// a time (Document::save) rather than holding a DecodedDocument.
class ChangeColumnsWriter {
 public:
  // One change row. message: nullptr = none; deps: rows of earlier changes, in hash order.
  template <class Index>
  void append(uint32_t actor, uint64_t seq, uint64_t max_op, int64_t time, const std::string* message,
              std::span<const Index> deps, ByteView extra) {
    append_row(actor, seq, max_op, time, message, deps.size(), extra);
    for (Index d : deps) deps_index_.append(static_cast<int64_t>(d));
  }
  // The columns, sorted by spec with `unknown` merged in, long ones DEFLATEd when compress.
  std::vector<ColumnOut> finish(bool compress, const std::vector<DecodedDocument::UnknownColumn>& unknown = {});

 private:
  void append_row(uint32_t actor, uint64_t seq, uint64_t max_op, int64_t time, const std::string* message,
                  size_t dep_count, ByteView extra);
  UlebEncoder actor_, deps_count_;
  DeltaEncoder seq_, max_op_, time_, deps_index_;
  StringEncoder message_;
  ValueEncoder extra_;
  Value extra_value_;
};

class OpColumnsWriter {
 public:
  // actor_map: op actor index -> index in the document's actor table (empty = the same).
  explicit OpColumnsWriter(std::vector<uint32_t> actor_map = {}) : actor_map_(std::move(actor_map)) {}
  // One op, in document order, its succ list in `pred`.
  void append(const Op& op);
  std::vector<ColumnOut> finish(bool compress, const std::vector<DecodedDocument::UnknownColumn>& unknown = {});

 private:
  std::vector<uint32_t> actor_map_;
  UlebEncoder obj_actor_, obj_counter_, key_actor_, id_actor_, action_, succ_count_, succ_actor_;
  DeltaEncoder key_counter_, id_counter_, succ_counter_;
  StringEncoder key_string_, mark_name_;
  BooleanEncoder insert_, expand_;
  ValueEncoder value_;
  bool any_expand_ = false;
};

// The body from its parts: the actor table, heads, finished columns and heads index.
Bytes encode_document_body(std::span<const ActorId> actors, std::span<const ChangeHash> heads,
                           const std::vector<ColumnOut>& change_columns, const std::vector<ColumnOut>& op_columns,
                           std::span<const uint64_t> heads_index);

// Encodes a document chunk (header included) with the canonical column encoders and
// the omission rules of §1.9. With `compress`, every column of kDeflateMinColumnSize
// bytes or more is raw-DEFLATEd, as Automerge.save() does.
Bytes encode_document(const DecodedDocument& doc, bool compress = true);
// The body only (what decode_document reads).
Bytes encode_document_body(const DecodedDocument& doc, bool compress = true);

}  // namespace gm::automerge
