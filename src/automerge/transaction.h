// Authoring one new change on a Document (spec/automerge.md §1.3, §1.8).
//
// A Transaction collects ops by one actor and, on commit(), encodes them as one
// change chunk and applies it to the document through Document::apply, the path
// every received change takes. The change's header is what npm Automerge writes
// for a local change:
//   deps      the document's heads when the transaction started
//   seq       the actor's highest seq in the document + 1
//   startOp   the document's largest op counter + 1; op i has id (startOp + i, actor)
//   time      given by the caller (npm writes seconds since the epoch)
//   message   optional
// Each op's preds are the ops visible at its key or element (§1.12): a put, a set
// or a delete supersedes every conflicting value, not only the one the JSON view
// shows; an increment names the counter it increments.
//
// Reading inside a transaction sees its own ops: they are applied to a private copy
// of the document's op set, so a later op can address an object or element an earlier
// one made. The copy costs a pass over the op set (1.5 ms for 10,000 keys), so it is
// made only when needed: until then reads see the document's own op set, and the
// first op waits; the copy is made (and that op applied to it) when a read or another
// op comes after it. A change of one op that makes no object (a JSON Patch
// `replace` of one value, the usual edit) never copies. The document must stay
// unchanged until commit(), as before. Nothing touches the document before commit():
// dropping a Transaction, or an error from any call, leaves the document as it was.
//
// Objects are named by ObjRef (an index into the op set, valid for the transaction's
// life). Sequence positions are indexes among the visible elements; for text one
// element is one Unicode code point as npm 3.x writes text (a text written by other
// means may hold longer strings in one element; it still counts as one).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "automerge/document.h"

namespace gm::automerge {

class Transaction {
 public:
  using ObjType = OpSet::ObjType;
  struct ObjRef {
    uint32_t index = 0;  // 0 = the root map
    bool operator==(const ObjRef&) const = default;
  };

  // What a map key or a sequence element holds: an object, or a scalar value.
  struct Slot {
    std::optional<ObjRef> object;  // set for a nested map, list or text
    Value value;                   // the scalar otherwise; for a counter its initial value
    int64_t counter_total = 0;     // a counter's current value (initial + increments)
    uint32_t op = 0;               // the op in the op set that holds it
    bool is_object() const { return object.has_value(); }
    bool is_counter() const { return !object && value.kind() == ValueType::kCounter; }
  };

  // `actor` must be non-empty. `time` goes into the change as is.
  Transaction(const Document& doc, ActorId actor, int64_t time, std::string message = {});

  static ObjRef root() { return ObjRef{0}; }
  ObjType type(ObjRef obj) const { return work().object_type(obj.index); }
  bool is_sequence(ObjRef obj) const { return type(obj) == ObjType::kList || type(obj) == ObjType::kText; }

  // ---- Reading (the document with this transaction's ops so far).
  // The winning value at a map key; nullopt if the key is absent.
  std::optional<Slot> get(ObjRef map, std::string_view key) const;
  // Visible elements of a sequence (code points of a text written by npm 3.x).
  size_t length(ObjRef seq) const;
  Result<Slot> get(ObjRef seq, size_t index) const;
  // The visible map keys, sorted by UTF-8 bytes.
  std::vector<std::string> keys(ObjRef map) const;
  // The string value of each visible element of a text object (one code point each
  // for text npm 3.x wrote; U+FFFC for a non-string element such as a block marker).
  std::vector<std::string> text_elements(ObjRef text) const;
  // The JSON view of an object or of one slot, as Document::to_json renders it.
  nlohmann::json to_json(ObjRef obj) const;
  nlohmann::json to_json(const Slot& slot) const;

  // ---- Writing. Values are scalars: null, bool, int, uint, f64, string (a
  // scalar string, not text), bytes, counter, timestamp. Errors: wrong object
  // kind, index out of range, a value of an unknown type.
  Status put(ObjRef map, std::string_view key, const Value& value);
  Result<ObjRef> put_object(ObjRef map, std::string_view key, ObjType type);
  Status remove(ObjRef map, std::string_view key);  // error if the key is absent
  // Increments the counter at the key (error if the value there is not a counter).
  Status increment(ObjRef map, std::string_view key, int64_t delta);

  // index <= length() for inserts, < length() otherwise.
  Status insert(ObjRef seq, size_t index, const Value& value);
  Result<ObjRef> insert_object(ObjRef seq, size_t index, ObjType type);
  Status set(ObjRef seq, size_t index, const Value& value);
  Result<ObjRef> set_object(ObjRef seq, size_t index, ObjType type);
  Status remove(ObjRef seq, size_t index);
  Status increment(ObjRef seq, size_t index, int64_t delta);
  // Deletes `delete_count` elements of a text or list at `index`, then inserts the
  // code points of `text` (valid UTF-8) there, one string element each.
  Status splice_text(ObjRef seq, size_t index, size_t delete_count, std::string_view text);

  // Ops so far.
  size_t op_count() const { return ops_.size(); }
  // Refuses further ops past this many (a limit error), so that one request cannot
  // build an unbounded change. Default: kDefaultMaxChangeOps.
  void set_max_ops(size_t max_ops) { max_ops_ = max_ops; }

  // ---- Finishing.
  struct Committed {
    ChangeHash hash;
    Bytes chunk;  // the type-1 change chunk, as stored and sent to peers
  };
  // Encodes the change and applies it to `doc`, which must be the document the
  // transaction started on, unchanged since. A transaction without ops produces no
  // change (nullopt; npm's change() makes none either). On error the document is
  // unchanged.
  Result<std::optional<Committed>> commit(Document& doc);

 private:
  // A new op, actor indexes into the op set's actor table; appended to ops_ and
  // applied to the copy (the first one later: work()).
  Status add_op(Op op);
  Result<uint32_t> element_at(ObjRef seq, size_t index) const;  // insert op of the index-th element
  Status check_scalar(const Value& v) const;
  Slot slot_of(uint32_t op) const;
  OpId obj_id(ObjRef obj) const { return work().object_id(obj.index); }
  std::vector<OpId> pred_ids(const std::vector<uint32_t>& ops) const;
  Status insert_op(ObjRef seq, size_t index, Op op);
  Status set_op(ObjRef seq, size_t index, Op op);

  // The op set with every op so far: the document's while no op is applied, else the
  // copy, made now if an op waits (a failure to apply it is kept in broken_).
  const OpSet& work() const;
  // Applies `op` (its id set) alone to copy_, as a one-op change in its own actor table.
  Status apply_to_copy(const Op& op) const;

  const OpSet* base_;                   // the document's op set
  mutable std::optional<OpSet> copy_;   // base_ with ops_ applied, once needed
  mutable bool first_waits_ = false;    // ops_[0] is not in copy_ yet (copy_ not made)
  mutable Status broken_ = Status::Ok();  // applying a waiting op failed: commit() says so
  ActorId actor_;
  uint32_t author_ = 0;  // actor_'s index in the op set's table (appended if it was new)
  int64_t time_;
  std::string message_;
  std::vector<ChangeHash> deps_;
  uint64_t seq_;
  uint64_t start_op_;
  std::vector<Op> ops_;
  size_t max_ops_ = kDefaultMaxChangeOps;
  mutable std::vector<uint32_t> scratch_;
};

}  // namespace gm::automerge
