// The op set: a document's current state, built from a document chunk or from
// changes, and its JSON view (spec/automerge.md §1.8, §1.10, §1.12).
//
// Representation (chosen for memory: the 260k-edit text trace takes ~13 MB here,
// npm automerge 3.5.0 ~240 MB for the same document):
//   ops_      every stored op, flat, in arrival order. Delete ops are never stored;
//             they only exist as entries in their targets' succ lists (§1.9).
//   actors_   a document-level actor table in arrival order. Lamport order compares
//             actor bytes, so each actor also has a rank (its position in sorted
//             order); a new actor updates the ranks (O(actors)), never the ops.
//   op index  open-addressing hash OpId -> op, for preds, ElemIds and ObjIds.
//   objects   root map + one per make op. A map object keeps key -> newest op;
//             the ops of one key form a chain in descending Lamport order, so the
//             winner is found first and a new op (usually the newest) is O(1).
//             A sequence object is a singly linked list of its insert ops (the
//             elements, marks included, tombstones kept) in RGA order (§1.10);
//             the non-insert ops on an element hang off its insert op as a
//             descending chain.
//   waiting   inserts whose reference element no applied change has created yet
//             (see apply_change), keyed by that element's id. A waiting insert
//             heads a detached run of elements (its own `next` chain: what was
//             inserted after it since) that joins its sequence when the element
//             arrives; until then it is in no sequence, so neither the JSON view
//             nor visit_ops shows it.
//
// JSON view (§1.12), equal to JSON.stringify(Automerge.toJS(doc)) except where
// noted:
//   map / table      JSON object; list  JSON array; text  JSON string (elements
//                    that are not strings, e.g. block markers, render as U+FFFC)
//   null, booleans, strings   themselves
//   int, uint        JSON integers, exact even beyond 2^53 (toJS gives uints, and ints
//                    beyond 2^53, as BigInt, which JSON.stringify refuses)
//   f64              JSON number; integral values with |x| < 2^53 as integers (so a
//                    dump prints "3" like JSON.stringify); NaN and ±Infinity -> null
//   counter          JSON integer: initial value + the sum of its increments
//   timestamp        the string JSON.stringify(new Date(ms)) gives,
//                    e.g. "2023-11-14T22:13:20.000Z"; out of Date range -> null
//   bytes            standard base64 with padding (JS gives a Uint8Array)
//   unknown types    null
// Object keys come out sorted (nlohmann::json), not in JS insertion order. Objects
// nested deeper than 2000 levels (or cyclic, in a hostile file) render as null.
// Strings, map keys and mark names must be valid UTF-8; input that is not is refused.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "automerge/doc_chunk.h"

namespace gm::automerge {

class OpSet {
 public:
  OpSet();

  // Builds the op set from a decoded document chunk (ops in document order, each
  // op's `pred` holding its succ list; OpId::actor indexes doc.actors). Elements
  // are taken in the order given (no RGA search). Errors on references to unknown
  // objects or elements, actor indexes out of range, or invalid UTF-8.
  static Result<OpSet> from_document(const DecodedDocument& doc);

  // Applies one decoded change (OpId::actor indexes [change.actor,
  // change.other_actors...]; op i has id start_op + i). Changes must arrive in
  // causal order. Every reference is checked before anything changes: on error
  // the op set is as it was.
  //
  // One exception to "every reference must exist": npm 2.2.8 can write an insert
  // whose reference element is created only by a concurrent change (not in the
  // inserting change's causal past), and npm 3.5.0 accepts that when the element's
  // change comes in the same batch (one load / applyChanges / sync message), with
  // a lower op id than the insert: its batch apply sorts a sequence's new ops by
  // element id and hangs each insert under its reference element, found among the
  // batch's lower-id inserts or the document's ops, else it panics (rust/automerge/
  // src/op_set2/change/batch.rs, Untangler::new / untangle_inner / finish), i.e.
  // it places the insert by the RGA rule as if the element had come first. So such an insert waits here
  // for its element and is placed (RGA, §1.10) when the element arrives. It is
  // refused at once when the element can never come: the author's own op, an op
  // id not below the insert's (npm: "assertion failed: self.entry.is_empty()"),
  // or an op of an actor whose applied ops already reach past that counter (its
  // later ops have higher counters). A missing element of another actor may still
  // come: check_waiting_inserts() after the batch says whether one is missing.
  Status apply_change(const Change& change);

  // An error naming an insert that still waits for its reference element, if any.
  // npm 3.5.0 refuses (panics on) a batch of changes that leaves one: call this
  // after applying a batch (a load, a set of received changes).
  Status check_waiting_inserts() const;
  size_t waiting_insert_count() const { return waiting_count_; }

  // The JSON view (see above).
  nlohmann::json to_json() const;

  // The actors, sorted, and every stored op in document order (§1.10) with its
  // succ list (Lamport order) in `pred` and actor indexes into *actors: the ops
  // of Automerge.save(), as encode_document takes them.
  void export_ops(std::vector<ActorId>* actors, std::vector<Op>* ops) const;

  // The same ops, one at a time, without building a vector (a 260k-op vector of
  // Op is ~60 MB): `visit` sees each op in document order; the Op it gets is
  // reused for the next call. Actor indexes refer to sorted_actors().
  void visit_ops(const std::function<void(const Op&)>& visit) const;
  std::vector<ActorId> sorted_actors() const;

  size_t op_count() const { return ops_.size(); }
  size_t actor_count() const { return actors_.size(); }

  // ---- Reading the current state op by op, for authoring changes (transaction.h).
  // Objects are named by their index here (0 = the root map), ops by their index in
  // the op set, actors by their index in actor(): all stable while ops are only
  // added. kNone is "no such op / object".
  static constexpr uint32_t kNone = 0xffffffffu;
  enum class ObjType : uint8_t { kMap, kList, kText, kTable };

  size_t object_count() const { return objects_.size(); }
  ObjType object_type(uint32_t obj) const { return objects_[obj].type; }
  // The object a make op created, or kNone when `op` makes none.
  uint32_t object_made_by(uint32_t op) const { return object_of_make_op(op); }
  // The id of the op that made `obj` (counter 0 for the root).
  OpId object_id(uint32_t obj) const { return obj == 0 ? OpId{} : op_id(objects_[obj].make_op); }
  // Actor indexes of op_id() and object_id() name entries of this table (arrival
  // order; a new actor is appended).
  const ActorId& actor(uint32_t index) const { return actors_[index]; }
  uint32_t actor_index(ByteView actor) const { return find_actor(actor); }
  OpId op_id(uint32_t op) const { return OpId{ops_[op].counter, ops_[op].actor}; }
  uint8_t op_action(uint32_t op) const { return ops_[op].action; }
  Value op_value(uint32_t op) const { return load_value(ops_[op]); }
  // The visible ops at a map key, highest op id first (the first is the value the
  // JSON view shows, the rest are conflicts). Empty when the key is absent.
  void visible_ops_at_key(uint32_t obj, std::string_view key, std::vector<uint32_t>* out) const;
  // The keys of a map that the JSON view shows (a visible op), in no particular order.
  void visible_keys(uint32_t obj, std::vector<std::string>* out) const;
  // The elements of a sequence that the JSON view shows, in order, each named by
  // its insert op (its element id).
  void visible_elements(uint32_t obj, std::vector<uint32_t>* out) const;
  // The visible ops of one element (its insert op and the ops set on it), highest
  // op id first.
  void visible_ops_at_element(uint32_t elem, std::vector<uint32_t>* out) const;
  // The JSON view of an op's value (of the object it made, for a make op), as
  // to_json() renders it.
  nlohmann::json value_to_json(uint32_t op) const;
  // The JSON view of one object (0 = the whole document, as to_json()).
  nlohmann::json object_to_json(uint32_t obj) const;
  // Approximate heap bytes held (for benchmarks).
  size_t memory_bytes() const;

 private:
  enum Flags : uint8_t { kInsert = 1, kExpand = 2, kHasMarkName = 4 };

  // 40 bytes: most of a loaded document's memory.
  struct StoredOp {
    uint32_t counter = 0;   // at most kMaxOpCounter (changes and documents refuse more)
    uint32_t actor = 0;     // index into actors_
    uint32_t obj = 0;       // index into objects_
    uint32_t key = 0;       // map: index into keys_; sequence: insert op of the element (kNone = HEAD)
    uint32_t chain = kNone; // next lower op on the same key / element
    uint32_t next = kNone;  // insert ops: next element of the sequence
    uint32_t succ = kNone;  // first entry in succs_
    uint8_t action = 0;
    uint8_t value_type = 0;
    uint8_t flags = 0;
    uint8_t value_len = 0;  // a bytes value's length when it is in payload (≤ 8), else kInArena
    uint64_t payload = 0;   // scalar bits, or ≤ 8 bytes, or the arena offset of a length-prefixed value
  };
  static constexpr uint8_t kInArena = 0xff;
  static_assert(sizeof(StoredOp) == 40);

  struct SuccEntry {
    uint64_t counter;
    uint32_t actor;
    uint32_t next;  // next entry of the same op's succ list, kNone at the end
  };

  struct Object {
    uint32_t make_op = kNone;  // kNone for the root
    ObjType type = ObjType::kMap;
    uint32_t first = kNone;    // sequences: first element
    std::unordered_map<uint32_t, uint32_t> keys;  // maps: key -> newest op
    bool is_seq() const { return type == ObjType::kList || type == ObjType::kText; }
  };

  // The op index (OpId -> op).
  uint32_t find_op(uint64_t counter, uint32_t actor) const;
  // False (and not indexed) if an op with the same id is indexed already.
  bool index_op(uint32_t op);
  void grow_index();

  uint32_t find_actor(ByteView actor) const;  // kNone if unknown
  uint32_t intern_actor(ByteView actor);
  uint32_t intern_key(std::string_view key);
  bool op_less(uint64_t ca, uint32_t aa, uint64_t cb, uint32_t ab) const {
    return ca != cb ? ca < cb : rank_[aa] < rank_[ab];
  }
  bool op_less(uint32_t a, uint32_t b) const {
    return op_less(ops_[a].counter, ops_[a].actor, ops_[b].counter, ops_[b].actor);
  }

  void store_value(StoredOp& op, const Value& v);
  Value load_value(const StoredOp& op) const;
  std::string_view value_bytes(const StoredOp& op) const;
  void add_succ(uint32_t op, uint64_t counter, uint32_t actor);
  // Links a stored op into its key chain (maps) or element chain (non-insert
  // sequence ops), keeping the chain in descending Lamport order.
  void link_into_chain(uint32_t* head, uint32_t op);
  uint32_t object_of_make_op(uint32_t op) const;
  // Places the inserts waiting for element `elem` (just stored) after it.
  void release_waiting(uint32_t elem);
  // Whether the missing reference element `ref` of op `op_index` of `change` may
  // still come in a later change (see apply_change).
  [[gnu::cold]] bool element_may_arrive_later(const Change& change, const std::vector<uint32_t>& actor_map,
                                              const OpId& ref, size_t op_index);
  uint64_t highest_counter(uint32_t actor);  // of the stored ops and succs; 0 for an unknown actor
  [[gnu::cold]] static std::string unknown_element(const Change& change, const OpId& elem);

  bool visible(const StoredOp& op) const;
  nlohmann::json render_value(uint32_t op) const;
  // The JSON view of the objects reachable from `root` (rendered into *out).
  void render_tree(uint32_t root, nlohmann::json* out) const;
  uint32_t winner(uint32_t newest) const;  // highest visible op of a chain, or kNone

  std::vector<StoredOp> ops_;
  std::vector<SuccEntry> succs_;
  std::string arena_;  // values longer than 8 bytes
  std::unordered_map<uint32_t, std::string> mark_names_;  // by op
  std::vector<ActorId> actors_;
  std::vector<uint32_t> rank_;           // actor index -> position in sorted order
  std::vector<uint32_t> sorted_actors_;  // actor indexes in byte order
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> actor_index_;
  mutable uint32_t last_actor_ = kNone;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, uint32_t> key_index_;
  std::vector<Object> objects_;  // [0] = root
  std::unordered_map<uint32_t, uint32_t> object_by_make_op_;
  std::vector<uint32_t> index_;  // open addressing, kNone = empty slot
  // Inserts waiting for their reference element: (counter, actor) -> insert ops.
  // Empty except after a causally inconsistent history (so the hot path only
  // tests empty()).
  std::map<std::pair<uint64_t, uint32_t>, std::vector<uint32_t>> waiting_;
  size_t waiting_count_ = 0;
  // highest_counter()'s cache: actor index -> highest counter among ops_[0,
  // max_counter_ops_) and succs_[0, max_counter_succs_).
  std::vector<uint64_t> max_counter_;
  size_t max_counter_ops_ = 0, max_counter_succs_ = 0;

  // apply_change's working memory, kept to avoid allocating per change.
  struct Resolved {
    uint64_t obj;   // object index, or kPending | j (an op of the same change)
    uint64_t elem;  // element insert op, kPending | j, kWaiting, or kNone (HEAD / map op)
  };
  struct Scratch {
    std::vector<uint32_t> actor_map;
    std::vector<Resolved> resolved;
    std::vector<uint64_t> preds;
    std::vector<uint32_t> stored;
  } scratch_;
};

}  // namespace gm::automerge
