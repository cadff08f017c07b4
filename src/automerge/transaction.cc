#include "automerge/transaction.h"

#include <algorithm>

#include "util/utf8.h"

namespace gm::automerge {

namespace {

constexpr uint8_t kActionSet = static_cast<uint8_t>(Action::kSet);
constexpr uint8_t kActionInc = static_cast<uint8_t>(Action::kIncrement);

bool is_make_action(uint8_t a) {
  return a == static_cast<uint8_t>(Action::kMakeMap) || a == static_cast<uint8_t>(Action::kMakeList) ||
         a == static_cast<uint8_t>(Action::kMakeText) || a == static_cast<uint8_t>(Action::kMakeTable);
}

Action make_action(OpSet::ObjType type) {
  switch (type) {
    case OpSet::ObjType::kList:
      return Action::kMakeList;
    case OpSet::ObjType::kText:
      return Action::kMakeText;
    case OpSet::ObjType::kTable:
      return Action::kMakeTable;
    case OpSet::ObjType::kMap:
      break;
  }
  return Action::kMakeMap;
}

// Length in bytes of the UTF-8 sequence starting with lead byte b (input is valid).
size_t utf8_length(unsigned char b) { return b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4; }

}  // namespace

Transaction::Transaction(const Document& doc, ActorId actor, int64_t time, std::string message)
    : base_(&doc.op_set()),
      actor_(std::move(actor)),
      time_(time),
      message_(std::move(message)),
      deps_(doc.heads()),
      seq_(doc.graph().max_seq(actor_) + 1),
      start_op_(doc.max_op() + 1) {
  // A new actor takes the next index of the op set's table when its first op is
  // applied (apply_change appends unknown actors, the author first).
  author_ = base_->actor_index(actor_);
  if (author_ == OpSet::kNone) author_ = static_cast<uint32_t>(base_->actor_count());
}

const OpSet& Transaction::work() const {
  if (first_waits_) {
    first_waits_ = false;
    copy_.emplace(*base_);
    broken_ = apply_to_copy(ops_.front());
  }
  return copy_ ? *copy_ : *base_;
}

// ---- reading -----------------------------------------------------------------------

Transaction::Slot Transaction::slot_of(uint32_t op) const {
  Slot s;
  s.op = op;
  if (is_make_action(work().op_action(op))) {
    s.object = ObjRef{work().object_made_by(op)};
    return s;
  }
  s.value = work().op_value(op);
  if (s.value.kind() == ValueType::kCounter) {
    // The JSON view sums the increments already (wrapping, as the reference).
    nlohmann::json total = work().value_to_json(op);
    s.counter_total = total.get<int64_t>();
  }
  return s;
}

std::optional<Transaction::Slot> Transaction::get(ObjRef map, std::string_view key) const {
  if (is_sequence(map)) return std::nullopt;
  work().visible_ops_at_key(map.index, key, &scratch_);
  if (scratch_.empty()) return std::nullopt;
  return slot_of(scratch_.front());
}

size_t Transaction::length(ObjRef seq) const {
  if (!is_sequence(seq)) return 0;
  work().visible_elements(seq.index, &scratch_);
  return scratch_.size();
}

Result<uint32_t> Transaction::element_at(ObjRef seq, size_t index) const {
  if (!is_sequence(seq)) return error("not a list or text");
  work().visible_elements(seq.index, &scratch_);
  if (index >= scratch_.size())
    return error("index " + std::to_string(index) + " out of range (length " + std::to_string(scratch_.size()) + ")");
  return scratch_[index];
}

Result<Transaction::Slot> Transaction::get(ObjRef seq, size_t index) const {
  GM_ASSIGN_OR_RETURN(uint32_t elem, element_at(seq, index));
  work().visible_ops_at_element(elem, &scratch_);
  return slot_of(scratch_.front());
}

std::vector<std::string> Transaction::keys(ObjRef map) const {
  std::vector<std::string> out;
  if (!is_sequence(map)) work().visible_keys(map.index, &out);
  std::sort(out.begin(), out.end());  // so that a copy writes its ops in a stable order
  return out;
}

std::vector<std::string> Transaction::text_elements(ObjRef text) const {
  std::vector<std::string> out;
  if (!is_sequence(text)) return out;
  std::vector<uint32_t> elems, ops;
  work().visible_elements(text.index, &elems);
  out.reserve(elems.size());
  for (uint32_t e : elems) {
    work().visible_ops_at_element(e, &ops);
    uint32_t w = ops.front();
    Value v = is_make_action(work().op_action(w)) ? Value{} : work().op_value(w);
    out.push_back(v.kind() == ValueType::kString ? v.bytes : "\xef\xbf\xbc");  // U+FFFC, as the view
  }
  return out;
}

nlohmann::json Transaction::to_json(ObjRef obj) const { return work().object_to_json(obj.index); }

nlohmann::json Transaction::to_json(const Slot& slot) const { return work().value_to_json(slot.op); }

// ---- writing -----------------------------------------------------------------------

std::vector<OpId> Transaction::pred_ids(const std::vector<uint32_t>& ops) const {
  std::vector<OpId> out;
  out.reserve(ops.size());
  for (uint32_t op : ops) out.push_back(work().op_id(op));
  return out;
}

Status Transaction::check_scalar(const Value& v) const {
  if (v.type > static_cast<uint8_t>(ValueType::kTimestamp)) return error("value of unknown type " + std::to_string(v.type));
  if (v.kind() == ValueType::kString && !is_valid_utf8(v.bytes)) return error("string value is not valid UTF-8");
  return Status::Ok();
}

Status Transaction::add_op(Op op) {
  GM_TRY(broken_);
  if (ops_.size() >= max_ops_)
    return limit_error("the change would hold more than " + std::to_string(max_ops_) + " ops");
  const uint64_t counter = start_op_ + ops_.size();
  if (counter > kMaxOpCounter) return limit_error("op counter beyond 2^32 - 1");
  op.id = OpId{counter, author_};
  const OpSet& w = work();  // the op before this one is applied first
  GM_TRY(broken_);
  // Preds in Lamport order (§1.7): counter, then actor bytes.
  std::sort(op.pred.begin(), op.pred.end(), [&](const OpId& a, const OpId& b) {
    if (a.counter != b.counter) return a.counter < b.counter;
    return w.actor(a.actor) < w.actor(b.actor);
  });
  // The first op waits for a read or another op to need it (work()); one that makes an
  // object is applied at once, as the caller reads the new object's index next.
  if (ops_.empty() && !is_make_action(static_cast<uint8_t>(op.action))) {
    ops_.push_back(std::move(op));
    first_waits_ = true;
    return Status::Ok();
  }
  if (!copy_) copy_.emplace(*base_);
  GM_TRY(apply_to_copy(op));
  ops_.push_back(std::move(op));
  return Status::Ok();
}

Status Transaction::apply_to_copy(const Op& op) const {
  // Apply it alone to the working op set, as a one-op change in its own actor table.
  OpSet& work = *copy_;
  Change one;
  one.actor = actor_;
  one.seq = seq_;
  one.start_op = op.id.counter;
  one.time = time_;
  one.ops.push_back(op);
  std::vector<uint32_t> table;  // change-local index - 1 -> work index
  auto local = [&](uint32_t a) -> uint32_t {
    if (a == author_) return 0;
    for (size_t i = 0; i < table.size(); ++i)
      if (table[i] == a) return static_cast<uint32_t>(i + 1);
    table.push_back(a);
    one.other_actors.push_back(work.actor(a));
    return static_cast<uint32_t>(table.size());
  };
  Op& o = one.ops.front();
  o.id.actor = 0;
  if (!o.obj.is_root()) o.obj.actor = local(o.obj.actor);
  if (!o.key.is_map() && o.key.elem.counter != 0) o.key.elem.actor = local(o.key.elem.actor);
  for (OpId& p : o.pred) p.actor = local(p.actor);
  return work.apply_change(one);
}

Status Transaction::put(ObjRef map, std::string_view key, const Value& value) {
  if (is_sequence(map)) return error("not a map");
  GM_TRY(check_scalar(value));
  Op op;
  op.obj = obj_id(map);
  op.key.map_key = std::string(key);
  op.action = kActionSet;
  op.value = value;
  work().visible_ops_at_key(map.index, key, &scratch_);
  op.pred = pred_ids(scratch_);
  return add_op(std::move(op));
}

Result<Transaction::ObjRef> Transaction::put_object(ObjRef map, std::string_view key, ObjType type) {
  if (is_sequence(map)) return error("not a map");
  Op op;
  op.obj = obj_id(map);
  op.key.map_key = std::string(key);
  op.action = static_cast<uint64_t>(make_action(type));
  work().visible_ops_at_key(map.index, key, &scratch_);
  op.pred = pred_ids(scratch_);
  GM_TRY(add_op(std::move(op)));
  // The object a make op creates is the newest object.
  return ObjRef{static_cast<uint32_t>(work().object_count() - 1)};
}

Status Transaction::remove(ObjRef map, std::string_view key) {
  if (is_sequence(map)) return error("not a map");
  work().visible_ops_at_key(map.index, key, &scratch_);
  if (scratch_.empty()) return error("no key \"" + std::string(key) + "\" to remove");
  Op op;
  op.obj = obj_id(map);
  op.key.map_key = std::string(key);
  op.action = static_cast<uint64_t>(Action::kDelete);
  op.pred = pred_ids(scratch_);
  return add_op(std::move(op));
}

Status Transaction::increment(ObjRef map, std::string_view key, int64_t delta) {
  if (is_sequence(map)) return error("not a map");
  work().visible_ops_at_key(map.index, key, &scratch_);
  if (scratch_.empty() || is_make_action(work().op_action(scratch_.front())) ||
      work().op_value(scratch_.front()).kind() != ValueType::kCounter)
    return error("the value at \"" + std::string(key) + "\" is not a counter");
  Op op;
  op.obj = obj_id(map);
  op.key.map_key = std::string(key);
  op.action = kActionInc;
  op.value = Value::integer(delta);
  op.pred = {work().op_id(scratch_.front())};
  return add_op(std::move(op));
}

Status Transaction::insert_op(ObjRef seq, size_t index, Op op) {
  if (!is_sequence(seq)) return error("not a list or text");
  work().visible_elements(seq.index, &scratch_);
  if (index > scratch_.size())
    return error("index " + std::to_string(index) + " out of range (length " + std::to_string(scratch_.size()) + ")");
  op.obj = obj_id(seq);
  // After the visible element before the index (tombstones in between do not
  // matter: RGA puts the new element right after its reference, past greater ids).
  op.key.elem = index == 0 ? OpId{} : work().op_id(scratch_[index - 1]);
  op.insert = true;
  return add_op(std::move(op));
}

Status Transaction::set_op(ObjRef seq, size_t index, Op op) {
  GM_ASSIGN_OR_RETURN(uint32_t elem, element_at(seq, index));
  op.obj = obj_id(seq);
  op.key.elem = work().op_id(elem);
  work().visible_ops_at_element(elem, &scratch_);
  op.pred = pred_ids(scratch_);
  return add_op(std::move(op));
}

Status Transaction::insert(ObjRef seq, size_t index, const Value& value) {
  GM_TRY(check_scalar(value));
  Op op;
  op.action = kActionSet;
  op.value = value;
  return insert_op(seq, index, std::move(op));
}

Result<Transaction::ObjRef> Transaction::insert_object(ObjRef seq, size_t index, ObjType type) {
  Op op;
  op.action = static_cast<uint64_t>(make_action(type));
  GM_TRY(insert_op(seq, index, std::move(op)));
  return ObjRef{static_cast<uint32_t>(work().object_count() - 1)};
}

Status Transaction::set(ObjRef seq, size_t index, const Value& value) {
  GM_TRY(check_scalar(value));
  Op op;
  op.action = kActionSet;
  op.value = value;
  return set_op(seq, index, std::move(op));
}

Result<Transaction::ObjRef> Transaction::set_object(ObjRef seq, size_t index, ObjType type) {
  Op op;
  op.action = static_cast<uint64_t>(make_action(type));
  GM_TRY(set_op(seq, index, std::move(op)));
  return ObjRef{static_cast<uint32_t>(work().object_count() - 1)};
}

Status Transaction::remove(ObjRef seq, size_t index) {
  Op op;
  op.action = static_cast<uint64_t>(Action::kDelete);
  return set_op(seq, index, std::move(op));
}

Status Transaction::increment(ObjRef seq, size_t index, int64_t delta) {
  GM_ASSIGN_OR_RETURN(uint32_t elem, element_at(seq, index));
  work().visible_ops_at_element(elem, &scratch_);
  uint32_t w = scratch_.front();
  if (is_make_action(work().op_action(w)) || work().op_value(w).kind() != ValueType::kCounter)
    return error("the element at " + std::to_string(index) + " is not a counter");
  Op op;
  op.obj = obj_id(seq);
  op.key.elem = work().op_id(elem);
  op.action = kActionInc;
  op.value = Value::integer(delta);
  op.pred = {work().op_id(w)};
  return add_op(std::move(op));
}

Status Transaction::splice_text(ObjRef seq, size_t index, size_t delete_count, std::string_view text) {
  if (!is_sequence(seq)) return error("not a list or text");
  if (!is_valid_utf8(text)) return error("text is not valid UTF-8");
  std::vector<uint32_t> elems;
  work().visible_elements(seq.index, &elems);
  if (index > elems.size() || delete_count > elems.size() - index)
    return error("splice of " + std::to_string(delete_count) + " at " + std::to_string(index) +
                 " out of range (length " + std::to_string(elems.size()) + ")");
  const OpId obj = obj_id(seq);
  // Deletes first, each element by its id (positions shift, ids do not); then the
  // inserts, each after the one before.
  std::vector<uint32_t> ops;
  for (size_t k = 0; k < delete_count; ++k) {
    const uint32_t elem = elems[index + k];
    work().visible_ops_at_element(elem, &ops);
    Op op;
    op.obj = obj;
    op.key.elem = work().op_id(elem);
    op.action = static_cast<uint64_t>(Action::kDelete);
    op.pred = pred_ids(ops);
    GM_TRY(add_op(std::move(op)));
  }
  OpId after = index == 0 ? OpId{} : work().op_id(elems[index - 1]);
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(static_cast<unsigned char>(text[i]));
    Op op;
    op.obj = obj;
    op.key.elem = after;
    op.insert = true;
    op.action = kActionSet;
    op.value = Value::string(std::string(text.substr(i, n)));
    GM_TRY(add_op(std::move(op)));
    after = OpId{start_op_ + ops_.size() - 1, author_};
    i += n;
  }
  return Status::Ok();
}

// ---- commit ------------------------------------------------------------------------

Result<std::optional<Transaction::Committed>> Transaction::commit(Document& doc) {
  if (ops_.empty()) return std::optional<Committed>();
  GM_TRY(broken_);
  if (&doc.op_set() != base_ || doc.heads() != deps_ || doc.max_op() + 1 != start_op_)
    return error("the document changed since the transaction started");
  Change change;
  change.deps = deps_;  // heads are sorted, as deps must be
  change.actor = actor_;
  change.seq = seq_;
  change.start_op = start_op_;
  change.time = time_;
  change.message = message_;
  change.ops = ops_;
  // The ops index the op set's actor table (the document's, then the author if it was
  // new: the copy appends it so); the change's own table is the author then the other
  // actors sorted (§1.3). Made without the copy when an op still waits for it.
  const OpSet& ops = copy_ ? *copy_ : *base_;
  std::vector<ActorId> table;
  table.reserve(ops.actor_count() + 1);
  for (uint32_t a = 0; a < ops.actor_count(); ++a) table.push_back(ops.actor(a));
  if (author_ == table.size()) table.push_back(actor_);
  localize_change_actors(change, table);
  Committed out;
  out.chunk = encode_change(change, &out.hash);
  GM_TRY(doc.apply(out.chunk));
  return std::optional<Committed>(std::move(out));
}

}  // namespace gm::automerge
