#include "automerge/op_set.h"

#include <gtest/gtest.h>

#include <cmath>

namespace gm::automerge {
namespace {

using nlohmann::json;

// ---- hand-built values, ops and changes ------------------------------------------

Value null_value() { return Value{}; }
Value str(std::string s) { return Value::string(std::move(s)); }
Value int_value(int64_t i) { return Value::integer(i); }
Value uint_value(uint64_t u) {
  Value v;
  v.type = static_cast<uint8_t>(ValueType::kUint);
  v.uint_value = u;
  return v;
}
Value f64_value(double d) {
  Value v;
  v.type = static_cast<uint8_t>(ValueType::kF64);
  v.f64_value = d;
  return v;
}
Value counter_value(int64_t i) {
  return Value::integer(i, ValueType::kCounter);
}
Value timestamp_value(int64_t ms) {
  Value v = int_value(ms);
  v.type = static_cast<uint8_t>(ValueType::kTimestamp);
  return v;
}
Value bytes_value(std::string b) {
  Value v = str(std::move(b));
  v.type = static_cast<uint8_t>(ValueType::kBytes);
  return v;
}

constexpr OpId kRoot{0, 0};
constexpr OpId kHead{0, 0};
OpId id(uint64_t counter, uint32_t actor = 0) { return OpId{counter, actor}; }

Op map_op(OpId obj, std::string key, Action action, Value value = {}, std::vector<OpId> pred = {}) {
  Op op;
  op.obj = obj;
  op.key.map_key = std::move(key);
  op.action = static_cast<uint64_t>(action);
  op.value = std::move(value);
  op.pred = std::move(pred);
  return op;
}
Op set(OpId obj, std::string key, Value value, std::vector<OpId> pred = {}) {
  return map_op(obj, std::move(key), Action::kSet, std::move(value), std::move(pred));
}
Op seq_op(OpId obj, OpId elem, bool insert, Action action, Value value = {}, std::vector<OpId> pred = {}) {
  Op op;
  op.obj = obj;
  op.key.elem = elem;
  op.insert = insert;
  op.action = static_cast<uint64_t>(action);
  op.value = std::move(value);
  op.pred = std::move(pred);
  return op;
}
Op insert(OpId obj, OpId after, Value value) { return seq_op(obj, after, true, Action::kSet, std::move(value)); }

ActorId actor(uint8_t b) { return ActorId(16, b); }

Change change(ActorId author, uint64_t seq, uint64_t start_op, std::vector<Op> ops,
              std::vector<ActorId> others = {}) {
  Change c;
  c.actor = std::move(author);
  c.seq = seq;
  c.start_op = start_op;
  c.other_actors = std::move(others);
  for (size_t i = 0; i < ops.size(); ++i) ops[i].id = OpId{start_op + i, 0};
  c.ops = std::move(ops);
  return c;
}

// Spec vector (b): title = "hi", n = 1, list = [1,2], text = "hey", as one change.
Change vector_b_change() {
  ActorId a = *from_hex("0123456789abcdef0123456789abcdef");
  OpId list = id(3), text = id(6);
  return change(a, 1, 1,
                {set(kRoot, "title", str("hi")), set(kRoot, "n", int_value(1)),
                 map_op(kRoot, "list", Action::kMakeList), insert(list, kHead, int_value(1)),
                 insert(list, id(4), int_value(2)), map_op(kRoot, "text", Action::kMakeText),
                 insert(text, kHead, str("h")), insert(text, id(7), str("e")), insert(text, id(8), str("y"))});
}

OpSet apply_all(const std::vector<Change>& changes) {
  OpSet s;
  for (const Change& c : changes) {
    Status st = s.apply_change(c);
    EXPECT_TRUE(st.ok()) << st.error().message;
  }
  return s;
}

// An op set's export as a document (its ops only).
DecodedDocument exported(const OpSet& s) {
  DecodedDocument doc;
  std::vector<Op> ops;
  s.export_ops(&doc.actors, &ops);
  for (const Op& op : ops) EXPECT_TRUE(doc.add_op(op));
  return doc;
}

// A document's ops as Ops.
std::vector<Op> ops_of(const DecodedDocument& doc) {
  std::vector<Op> ops;
  for (size_t i = 0; i < doc.ops.size(); ++i) ops.push_back(doc.op(i));
  return ops;
}

// Re-loads an op set from its own export, as a saved document would be.
OpSet reload(const OpSet& s) {
  DecodedDocument doc = exported(s);
  Result<OpSet> r = OpSet::from_document(doc);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(r).value() : OpSet();
}

void expect_json(const OpSet& s, const char* expected) {
  EXPECT_EQ(s.to_json(), json::parse(expected));
  // The document form must give the same view, and export the same ops again.
  OpSet again = reload(s);
  EXPECT_EQ(again.to_json(), json::parse(expected));
  std::vector<ActorId> a1, a2;
  std::vector<Op> o1, o2;
  s.export_ops(&a1, &o1);
  again.export_ops(&a2, &o2);
  EXPECT_EQ(a1, a2);
  ASSERT_EQ(o1.size(), o2.size());
  for (size_t i = 0; i < o1.size(); ++i) {
    EXPECT_EQ(o1[i].id, o2[i].id) << i;
    EXPECT_EQ(o1[i].obj, o2[i].obj) << i;
    EXPECT_EQ(o1[i].key, o2[i].key) << i;
    EXPECT_EQ(o1[i].pred, o2[i].pred) << i;
    EXPECT_EQ(o1[i].value, o2[i].value) << i;
    EXPECT_EQ(o1[i].insert, o2[i].insert) << i;
    EXPECT_EQ(o1[i].action, o2[i].action) << i;
    EXPECT_EQ(o1[i].mark_name, o2[i].mark_name) << i;
  }
}

// ---- tests -------------------------------------------------------------------------

TEST(OpSet, EmptyIsEmptyObject) {
  OpSet s;
  EXPECT_EQ(s.to_json(), json::object());
  std::vector<ActorId> actors;
  std::vector<Op> ops;
  s.export_ops(&actors, &ops);
  EXPECT_TRUE(actors.empty());
  EXPECT_TRUE(ops.empty());
}

TEST(OpSet, SpecVectorB) {
  OpSet s = apply_all({vector_b_change()});
  expect_json(s, R"({"list":[1,2],"n":1,"text":"hey","title":"hi"})");
  // Document order (§1.10, spec vector (b)): root ops by key, then 3@ then 6@.
  std::vector<ActorId> actors;
  std::vector<Op> ops;
  s.export_ops(&actors, &ops);
  ASSERT_EQ(actors.size(), 1u);
  std::vector<uint64_t> counters;
  for (const Op& op : ops) counters.push_back(op.id.counter);
  EXPECT_EQ(counters, (std::vector<uint64_t>{3, 2, 6, 1, 4, 5, 7, 8, 9}));
  EXPECT_EQ(ops[3].key.map_key, std::optional<std::string>("title"));
  EXPECT_EQ(ops[4].obj, id(3));
  EXPECT_TRUE(ops[4].insert);
  EXPECT_EQ(ops[4].key.elem, kHead);
  EXPECT_EQ(ops[5].key.elem, id(4));
}

TEST(OpSet, ConflictHighestOpIdWins) {
  ActorId a = actor(0xaa), b = actor(0xbb);
  // Both set "x" with counter 1; b's actor is larger so b wins.
  OpSet s = apply_all({change(b, 1, 1, {set(kRoot, "x", str("from b"))}),
                       change(a, 1, 1, {set(kRoot, "x", str("from a"))})});
  expect_json(s, R"({"x":"from b"})");
  // A later overwrite that saw both resolves the conflict.
  ASSERT_TRUE(s.apply_change(change(a, 2, 2, {set(kRoot, "x", int_value(7), {id(1, 0), id(1, 1)})}, {b})).ok());
  expect_json(s, R"({"x":7})");
  std::vector<ActorId> actors;
  std::vector<Op> ops;
  s.export_ops(&actors, &ops);
  ASSERT_EQ(ops.size(), 3u);
  // Sorted by OpId: 1@a, 1@b, 2@a; the first two are superseded by 2@a.
  EXPECT_EQ(ops[0].id, id(1, 0));
  EXPECT_EQ(ops[1].id, id(1, 1));
  EXPECT_EQ(ops[2].id, id(2, 0));
  EXPECT_EQ(ops[0].pred, std::vector<OpId>{id(2, 0)});
  EXPECT_EQ(ops[1].pred, std::vector<OpId>{id(2, 0)});
  EXPECT_TRUE(ops[2].pred.empty());
}

TEST(OpSet, LateActorWithSmallerIdReranks) {
  ActorId a = actor(0x50), b = actor(0x10);
  OpSet s = apply_all({change(a, 1, 1, {set(kRoot, "k", str("a"))})});
  ASSERT_TRUE(s.apply_change(change(b, 1, 1, {set(kRoot, "k", str("b"))})).ok());
  expect_json(s, R"({"k":"a"})");  // 1@0x50.. beats 1@0x10..
  std::vector<ActorId> actors;
  std::vector<Op> ops;
  s.export_ops(&actors, &ops);
  EXPECT_EQ(actors, (std::vector<ActorId>{b, a}));
  EXPECT_EQ(ops[0].id, id(1, 0));  // b's op first, actor index 0 = b
  EXPECT_EQ(ops[1].id, id(1, 1));
}

TEST(OpSet, ManyActorsInAnyOrderRankByBytes) {
  OpSet s;
  std::vector<ActorId> all;
  uint32_t x = 7;
  for (int i = 0; i < 60; ++i) {
    x = x * 1103515245u + 12345u;
    ActorId a = {static_cast<uint8_t>(x >> 24), static_cast<uint8_t>(x >> 16), static_cast<uint8_t>(i)};
    if (i % 7 == 0) a.resize(1);  // prefixes sort first
    all.push_back(a);
    ASSERT_TRUE(s.apply_change(change(a, 1, 1, {set(kRoot, "k", int_value(i))})).ok());
  }
  std::vector<ActorId> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  ASSERT_EQ(sorted.size(), all.size()) << "test actors must be distinct";
  int best = static_cast<int>(std::max_element(all.begin(), all.end()) - all.begin());
  expect_json(s, ("{\"k\":" + std::to_string(best) + "}").c_str());
  std::vector<ActorId> actors;
  std::vector<Op> ops;
  s.export_ops(&actors, &ops);
  EXPECT_EQ(actors, sorted);
  for (size_t i = 0; i < ops.size(); ++i) EXPECT_EQ(ops[i].id, id(1, static_cast<uint32_t>(i)));
}

TEST(OpSet, Counters) {
  ActorId a = actor(1), b = actor(2);
  OpSet s = apply_all({change(a, 1, 1, {set(kRoot, "c", counter_value(5))}),
                       change(a, 2, 2, {map_op(kRoot, "c", Action::kIncrement, int_value(3), {id(1)})}),
                       change(b, 1, 3, {map_op(kRoot, "c", Action::kIncrement, int_value(-1), {id(1, 1)})}, {a})});
  expect_json(s, R"({"c":7})");
  // Deleting the counter hides it, increments notwithstanding.
  ASSERT_TRUE(s.apply_change(change(a, 3, 4, {map_op(kRoot, "c", Action::kDelete, {}, {id(1)})})).ok());
  expect_json(s, R"({})");
}

TEST(OpSet, DeletesInMapsListsAndText) {
  ActorId a = actor(1);
  OpId list = id(1), text = id(4);
  OpSet s = apply_all({change(a, 1, 1,
                              {map_op(kRoot, "l", Action::kMakeList), insert(list, kHead, int_value(10)),
                               insert(list, id(2), int_value(20)), map_op(kRoot, "t", Action::kMakeText),
                               insert(text, kHead, str("a")), insert(text, id(5), str("b")),
                               insert(text, id(6), str("c")), set(kRoot, "gone", str("x"))})});
  expect_json(s, R"({"l":[10,20],"t":"abc","gone":"x"})");
  ASSERT_TRUE(s.apply_change(change(a, 2, 9,
                                    {seq_op(list, id(2), false, Action::kDelete, {}, {id(2)}),
                                     seq_op(text, id(6), false, Action::kDelete, {}, {id(6)}),
                                     map_op(kRoot, "gone", Action::kDelete, {}, {id(8)}),
                                     seq_op(list, id(3), false, Action::kSet, int_value(21), {id(3)})}))
                  .ok());
  expect_json(s, R"({"l":[21],"t":"ac"})");
  // Tombstones stay in document order; deletes are not stored but are succs.
  std::vector<ActorId> actors;
  std::vector<Op> ops;
  s.export_ops(&actors, &ops);
  ASSERT_EQ(ops.size(), 9u);  // 8 + the list overwrite
  // Root ops by key: gone(8), l(1), t(4); then list 1@: 2, 3, 12; then text 4@: 5, 6, 7.
  std::vector<uint64_t> counters;
  for (const Op& op : ops) counters.push_back(op.id.counter);
  EXPECT_EQ(counters, (std::vector<uint64_t>{8, 1, 4, 2, 3, 12, 5, 6, 7}));
  EXPECT_EQ(ops[0].pred, std::vector<OpId>{id(11)});
  EXPECT_EQ(ops[3].pred, std::vector<OpId>{id(9)});
  EXPECT_EQ(ops[4].pred, std::vector<OpId>{id(12)});
  EXPECT_EQ(ops[5].key.elem, id(3));
  EXPECT_FALSE(ops[5].insert);
}

TEST(OpSet, NestedObjects) {
  ActorId a = actor(1);
  OpSet s = apply_all({change(a, 1, 1,
                              {map_op(kRoot, "cfg", Action::kMakeMap), set(id(1), "on", Value{2}),
                               map_op(id(1), "items", Action::kMakeList),
                               seq_op(id(3), kHead, true, Action::kMakeMap), set(id(4), "name", str("x")),
                               seq_op(id(3), id(4), true, Action::kMakeText), insert(id(6), kHead, str("t")),
                               seq_op(id(3), id(6), true, Action::kMakeList), insert(id(8), kHead, Value{0}),
                               map_op(kRoot, "tbl", Action::kMakeTable)})});
  expect_json(s, R"({"cfg":{"on":true,"items":[{"name":"x"},"t",[null]]},"tbl":{}})");
  // Replacing the nested map hides the whole subtree.
  ASSERT_TRUE(s.apply_change(change(a, 2, 11, {set(kRoot, "cfg", str("flat"), {id(1)})})).ok());
  expect_json(s, R"({"cfg":"flat","tbl":{}})");
}

TEST(OpSet, MarksAreSkippedAndBlocksAreFffc) {
  ActorId a = actor(1);
  OpId text = id(1);
  Op begin = seq_op(text, id(2), true, Action::kMark, Value{2});
  begin.mark_name = "bold";
  begin.expand = true;
  Op end = seq_op(text, id(4), true, Action::kMark);
  OpSet s = apply_all({change(a, 1, 1,
                              {map_op(kRoot, "t", Action::kMakeText), insert(text, kHead, str("a")),
                               seq_op(text, id(2), true, Action::kMakeMap), insert(text, id(3), str("b")),
                               begin, end, insert(text, id(6), str("\xf0\x9f\x98\x80"))})});
  expect_json(s, "{\"t\":\"a\xef\xbf\xbc" "b\xf0\x9f\x98\x80\"}");
  std::vector<ActorId> actors;
  std::vector<Op> ops;
  s.export_ops(&actors, &ops);
  // RGA: begin (5) and the block (3) both follow "a"(2); 5 > 3 so the mark comes
  // first; the end mark (6) follows "b"(4).
  std::vector<uint64_t> counters;
  for (const Op& op : ops) counters.push_back(op.id.counter);
  EXPECT_EQ(counters, (std::vector<uint64_t>{1, 2, 5, 3, 4, 6, 7}));
  EXPECT_EQ(ops[2].mark_name, std::optional<std::string>("bold"));
  EXPECT_TRUE(ops[2].expand);
  EXPECT_FALSE(ops[3].mark_name.has_value());
}

TEST(OpSet, RgaConcurrentInsertsOrderByOpId) {
  ActorId a = actor(0xa0), b = actor(0xb0), c = actor(0xc0);
  OpId text = id(1);
  Change base = change(a, 1, 1, {map_op(kRoot, "t", Action::kMakeText), insert(text, kHead, str("x"))});
  // Three concurrent inserts after "x", all with counter 3; then b types on.
  Change ca = change(a, 2, 3, {insert(text, id(2), str("A"))});
  Change cb = change(b, 1, 3, {insert(id(1, 1), id(2, 1), str("B")), insert(id(1, 1), id(3), str("b"))}, {a});
  Change cc = change(c, 1, 3, {insert(id(1, 1), id(2, 1), str("C"))}, {a});
  // Any causal order gives the same text: higher OpId first, descendants kept.
  for (auto order : std::vector<std::vector<Change>>{{base, ca, cb, cc}, {base, cc, cb, ca}, {base, cb, ca, cc}}) {
    OpSet s = apply_all(order);
    expect_json(s, R"({"t":"xCBbA"})");
  }
  // An insert that saw everything, at HEAD, goes first; one after "x" with a
  // bigger counter goes right after "x".
  OpSet s = apply_all({base, ca, cb, cc});
  ASSERT_TRUE(s.apply_change(change(a, 3, 5, {insert(text, kHead, str("<")), insert(text, id(2), str("|"))})).ok());
  expect_json(s, R"({"t":"<x|CBbA"})");
}

// npm 2.2.8 can write an insert after an element that only a concurrent change
// creates; npm 3.5.0 applies such a history when the element's change comes in the
// same batch, placing the insert by RGA as if the element had been there. The list
// and document order below are npm 3.5.0's A.load(changes) / A.save() for the same
// hand-built changes (checked with the npm package when this test was written).
struct InconsistentHistory {
  ActorId aa = actor(0xaa), bb = actor(0xbb), cc = actor(0xcc), dd = actor(0xdd), ee = actor(0xee), ff = actor(0xff);
  // a1: l = ["a", "z"]. b1 (after a1): "b" after "a", "b2" after "b".
  // c1 (after a1 only): "c" after b1's "b" (4@bb), "c2" after "c", "c" overwritten by "C".
  // d1 (after a1 only): "d" after 4@bb.  e1 (after c1): "e" after "c2" (7@cc).
  // f1 (after a1 only): "f" after 7@cc, which c1 makes and which itself waits for 4@bb.
  Change a1 = change(aa, 1, 1, {map_op(kRoot, "l", Action::kMakeList), insert(id(1), kHead, str("a")),
                                insert(id(1), id(2), str("z"))});
  Change b1 = change(bb, 1, 4, {insert(id(1, 1), id(2, 1), str("b")), insert(id(1, 1), id(4), str("b2"))}, {aa});
  Change c1 = change(cc, 1, 6,
                     {insert(id(1, 1), id(4, 2), str("c")), insert(id(1, 1), id(6), str("c2")),
                      seq_op(id(1, 1), id(6), false, Action::kSet, str("C"), {id(6)})},
                     {aa, bb});
  Change d1 = change(dd, 1, 5, {insert(id(1, 1), id(4, 2), str("d"))}, {aa, bb});
  Change e1 = change(ee, 1, 9, {insert(id(1, 1), id(7, 2), str("e"))}, {aa, cc});
  Change f1 = change(ff, 1, 8, {insert(id(1, 1), id(7, 2), str("f"))}, {aa, cc});
};

TEST(OpSet, InsertAfterAnElementOfAConcurrentChangeWaitsForIt) {
  InconsistentHistory h;
  const char* want = R"({"l":["a","b","C","c2","e","f","d","b2","z"]})";
  // Document order (actors aa..ff = indexes 0..5): the list's elements in RGA
  // order, each followed by the ops on it.
  const std::vector<OpId> want_list = {id(2, 0), id(4, 1), id(6, 2), id(8, 2), id(7, 2),
                                       id(9, 4), id(8, 5), id(5, 3), id(5, 1), id(3, 0)};
  for (auto order : std::vector<std::vector<Change>>{{h.a1, h.c1, h.e1, h.f1, h.d1, h.b1},
                                                     {h.a1, h.f1, h.d1, h.b1, h.c1, h.e1},
                                                     {h.a1, h.b1, h.c1, h.d1, h.e1, h.f1},
                                                     {h.a1, h.f1, h.c1, h.b1, h.d1, h.e1}}) {
    OpSet s = apply_all(order);
    EXPECT_EQ(s.waiting_insert_count(), 0u);
    EXPECT_TRUE(s.check_waiting_inserts().ok());
    expect_json(s, want);
    std::vector<ActorId> actors;
    std::vector<Op> ops;
    s.export_ops(&actors, &ops);
    ASSERT_EQ(ops.size(), 1 + want_list.size());
    for (size_t i = 0; i < want_list.size(); ++i) EXPECT_EQ(ops[i + 1].id, want_list[i]) << i;
    EXPECT_EQ(ops[3].key.elem, id(4, 1));  // "c" keeps its reference element
  }
  // Before b1 the waiting inserts (and what was inserted after them) are not shown,
  // and the op set says that something is missing.
  OpSet s = apply_all({h.a1, h.c1, h.e1, h.f1, h.d1});
  EXPECT_EQ(s.to_json(), json::parse(R"({"l":["a","z"]})"));
  EXPECT_EQ(s.waiting_insert_count(), 2u);  // c1's "c" and d1's "d"; f1's "f" found 7@cc
  Status check = s.check_waiting_inserts();
  ASSERT_FALSE(check.ok());
  EXPECT_NE(check.error().message.find("unknown element"), std::string::npos) << check.error().message;
  std::vector<ActorId> actors;
  std::vector<Op> ops;
  s.export_ops(&actors, &ops);
  EXPECT_EQ(ops.size(), 3u);
  ASSERT_TRUE(s.apply_change(h.b1).ok());
  EXPECT_TRUE(s.check_waiting_inserts().ok());
  expect_json(s, want);
}

TEST(OpSet, InsertAfterAnElementThatCannotComeIsRefused) {
  InconsistentHistory h;
  ActorId gg = actor(0x11);
  OpSet s = apply_all(
      {h.a1, change(h.aa, 2, 4, {set(kRoot, "k", str("v")), map_op(kRoot, "k", Action::kDelete, {}, {id(4)})})});
  json before = s.to_json();
  size_t ops_before = s.op_count(), actors_before = s.actor_count();
  std::vector<Change> bad = {
      // The element's id is not below the insert's: npm 3.5.0 refuses it even when
      // the element comes in the same batch.
      change(h.cc, 1, 6, {insert(id(1, 1), id(10, 2), str("x"))}, {h.aa, h.bb}),
      change(h.bb, 1, 6, {insert(id(1, 1), id(6, 2), str("x"))}, {h.aa, h.cc}),  // same counter, cc > bb
      // The author's own op that is not in this change or its past.
      change(h.cc, 1, 6, {insert(id(1, 1), kHead, str("x")), insert(id(1, 1), id(5), str("x"))}, {h.aa}),
      // aa's ops already reach counter 5 (5@aa is a delete, not an element).
      change(h.cc, 1, 9, {insert(id(1, 1), id(5, 1), str("x"))}, {h.aa}),
      // Not an insert: an update or delete of a missing element.
      change(h.cc, 1, 9, {seq_op(id(1, 1), id(7, 2), false, Action::kSet, str("x"))}, {h.aa, h.bb}),
      change(h.cc, 1, 9, {seq_op(id(1, 1), id(7, 2), false, Action::kDelete, {}, {id(7, 2)})}, {h.aa, h.bb}),
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    Status st = s.apply_change(bad[i]);
    ASSERT_FALSE(st.ok()) << "case " << i;
    EXPECT_NE(st.error().message.find("unknown element"), std::string::npos) << st.error().message;
    EXPECT_EQ(s.to_json(), before) << "case " << i;
    EXPECT_EQ(s.op_count(), ops_before) << "case " << i;
    EXPECT_EQ(s.actor_count(), actors_before) << "case " << i;
    EXPECT_EQ(s.waiting_insert_count(), 0u) << "case " << i;
  }
  // Same counter with a smaller actor is a lower id: that one may still come.
  ASSERT_TRUE(s.apply_change(change(h.cc, 1, 7, {insert(id(1, 1), id(7, 2), str("x"))}, {h.aa, gg})).ok());
  EXPECT_EQ(s.waiting_insert_count(), 1u);
  // An element with that id that lands in another object does not take it.
  ASSERT_TRUE(s.apply_change(change(gg, 1, 6, {map_op(kRoot, "t", Action::kMakeText),
                                               insert(id(6), kHead, str("t"))}))
                  .ok());
  EXPECT_EQ(s.to_json(), json::parse(R"({"l":["a","z"],"t":"t"})"));
  EXPECT_EQ(s.waiting_insert_count(), 1u);
  EXPECT_FALSE(s.check_waiting_inserts().ok());
}

TEST(OpSet, ScalarJsonChoices) {
  ActorId a = actor(1);
  OpSet s = apply_all({change(a, 1, 1,
                              {set(kRoot, "big", uint_value(18446744073709551615ull)),
                               set(kRoot, "neg", int_value(-9007199254740993)), set(kRoot, "f", f64_value(1.5)),
                               set(kRoot, "fi", f64_value(3.0)), set(kRoot, "nan", f64_value(NAN)),
                               set(kRoot, "inf", f64_value(-INFINITY)),
                               set(kRoot, "ts", timestamp_value(1700000000000)),
                               set(kRoot, "ts0", timestamp_value(-1)), set(kRoot, "tsbig", timestamp_value(1e15)),
                               set(kRoot, "bytes", bytes_value("\x01\x02\x03\xff")),
                               set(kRoot, "long", str("a string longer than eight bytes")),
                               set(kRoot, "null", null_value()), set(kRoot, "f", f64_value(-2.25), {id(3)})})});
  json j = s.to_json();
  EXPECT_EQ(j["big"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_EQ(j["neg"].get<int64_t>(), -9007199254740993);
  EXPECT_EQ(j["f"], -2.25);
  EXPECT_EQ(j["fi"].dump(), "3");
  EXPECT_TRUE(j["nan"].is_null());
  EXPECT_TRUE(j["inf"].is_null());
  EXPECT_EQ(j["ts"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(j["ts0"], "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(j["tsbig"], "+033658-09-27T01:46:40.000Z");
  EXPECT_EQ(j["bytes"], "AQID/w==");
  EXPECT_EQ(j["long"], "a string longer than eight bytes");
  EXPECT_TRUE(j.contains("null") && j["null"].is_null());
  OpSet again = reload(s);
  EXPECT_EQ(again.to_json().dump(), j.dump());
}

TEST(OpSet, BadReferencesLeaveTheOpSetUnchanged) {
  ActorId a = actor(1), b = actor(2);
  OpSet s = apply_all({vector_b_change()});
  json before = s.to_json();
  size_t ops_before = s.op_count(), actors_before = s.actor_count();
  std::vector<Change> bad = {
      change(b, 1, 10, {set(id(99), "k", str("v"))}),                        // unknown object
      change(b, 1, 10, {set(kRoot, "ok", str("v")), insert(id(3), id(77), int_value(1))}),  // unknown element
      change(b, 1, 10, {set(kRoot, "ok", str("v")), set(kRoot, "x", str("v"), {id(55)})}),  // unknown pred
      change(b, 1, 10, {insert(id(2), kHead, str("v"))}),                      // 2@ is not an object
      change(b, 1, 10, {set(id(3), "k", str("v"))}),                           // map key in a list
      change(b, 1, 10, {insert(kRoot, kHead, str("v"))}),                      // insert into a map
      change(b, 1, 10, {insert(id(6), id(4), str("v"))}),                      // element of another object
      change(b, 1, 10, {set(kRoot, "k", str("\xff"))}),                        // invalid UTF-8
      change(b, 1, 10, {seq_op(id(3), kHead, false, Action::kSet, int_value(1))}),  // set on HEAD
  };
  for (auto& c : bad) {
    for (auto& op : c.ops)
      for (auto& p : op.pred) p.actor = 1;  // refer to the vector's actor
    c.other_actors = {*from_hex("0123456789abcdef0123456789abcdef")};
    if (c.ops.back().obj.counter == 3 || c.ops.back().obj.counter == 6 || c.ops.back().obj.counter == 2) {
      c.ops.back().obj.actor = 1;
      if (!c.ops.back().key.elem.is_root()) c.ops.back().key.elem.actor = 1;
    }
  }
  for (size_t i = 0; i < bad.size(); ++i) {
    Status st = s.apply_change(bad[i]);
    EXPECT_FALSE(st.ok()) << "case " << i;
    EXPECT_EQ(s.to_json(), before) << "case " << i;
    EXPECT_EQ(s.op_count(), ops_before) << "case " << i;
    EXPECT_EQ(s.actor_count(), actors_before) << "case " << i;
  }
  // The same change twice is refused.
  EXPECT_FALSE(s.apply_change(vector_b_change()).ok());
  // And a good change by the new actor still applies afterwards.
  ASSERT_TRUE(s.apply_change(change(b, 1, 10, {set(kRoot, "n", int_value(2), {id(2, 1)})},
                                    {*from_hex("0123456789abcdef0123456789abcdef")}))
                  .ok());
  EXPECT_EQ(s.to_json()["n"], 2);
  (void)a;
}

TEST(OpSet, FromDocumentRejectsBadDocuments) {
  OpSet s = apply_all({vector_b_change()});
  DecodedDocument doc = exported(s);
  {
    DecodedDocument d = doc;
    d.ops[3].obj = DecodedDocument::RowId(id(42));
    EXPECT_FALSE(OpSet::from_document(d).ok());
  }
  {
    DecodedDocument d = doc;
    d.ops[4].elem = DecodedDocument::RowId(id(9));  // an element that comes later
    EXPECT_FALSE(OpSet::from_document(d).ok());
  }
  {
    DecodedDocument d = doc;
    d.ops[0].id.actor = 5;
    EXPECT_FALSE(OpSet::from_document(d).ok());
  }
  {
    DecodedDocument d = doc;
    d.ops[1].id = d.ops[0].id;
    EXPECT_FALSE(OpSet::from_document(d).ok());
  }
  {
    // Table references out of range (a document edited in memory): refused, not read.
    DecodedDocument d = doc;
    d.ops[0].set_value_bytes({4, 1000});
    EXPECT_FALSE(OpSet::from_document(d).ok());
    d = doc;
    d.ops[0].succ_count = 1000;
    EXPECT_FALSE(OpSet::from_document(d).ok());
  }
  {
    // A make op inside the object it makes renders as null instead of looping.
    DecodedDocument d;
    d.actors = {actor(1)};
    Op mk = map_op(id(1), "self", Action::kMakeMap);
    mk.id = id(1);
    Op link = map_op(kRoot, "m", Action::kMakeMap);
    link.id = id(2);
    ASSERT_TRUE(d.add_op(link));
    ASSERT_TRUE(d.add_op(mk));
    Result<OpSet> r = OpSet::from_document(d);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->to_json(), json::parse(R"({"m":{}})"));
  }
}

}  // namespace
}  // namespace gm::automerge

// ---- npm 3.5.0 fixtures (tests/interop/tools/opset_fixtures.mjs) -----------------

namespace gm::automerge {
namespace {

Bytes read_file(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  Bytes out;
  if (!f) return out;
  uint8_t buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
  fclose(f);
  return out;
}

std::string fixture(const std::string& name, const char* ext, const char* dir = nullptr) {
  return std::string(dir ? dir : GM_SOURCE_DIR "/src/automerge/testdata") + "/opset_" + name + ext;
}

void expect_same_ops(const std::vector<Op>& got, const std::vector<Op>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("op " + std::to_string(i));
    EXPECT_EQ(got[i].id, want[i].id);
    EXPECT_EQ(got[i].obj, want[i].obj);
    EXPECT_EQ(got[i].key, want[i].key);
    EXPECT_EQ(got[i].insert, want[i].insert);
    EXPECT_EQ(got[i].action, want[i].action);
    EXPECT_EQ(got[i].value, want[i].value);
    EXPECT_EQ(got[i].pred, want[i].pred);
    EXPECT_EQ(got[i].expand, want[i].expand);
    EXPECT_EQ(got[i].mark_name, want[i].mark_name);
  }
}

class NpmFixture : public ::testing::TestWithParam<const char*> {};

void check_fixture(const std::string& name, const char* dir = nullptr) {
  SCOPED_TRACE(name);
  Bytes saved = read_file(fixture(name, ".amrg", dir));
  Bytes changes = read_file(fixture(name, ".changes", dir));
  json expected = json::parse(as_string(read_file(fixture(name, ".json", dir))));

  auto doc_chunks = parse_chunks(saved);
  ASSERT_TRUE(doc_chunks.ok()) << doc_chunks.error().message;
  ASSERT_EQ(doc_chunks->size(), 1u);
  auto doc = decode_document((*doc_chunks)[0].body);
  ASSERT_TRUE(doc.ok()) << doc.error().message;

  auto from_doc = OpSet::from_document(*doc);
  ASSERT_TRUE(from_doc.ok()) << from_doc.error().message;
  EXPECT_EQ(from_doc->to_json(), expected);

  OpSet applied;
  auto change_chunks = parse_chunks(changes);
  ASSERT_TRUE(change_chunks.ok()) << change_chunks.error().message;
  for (const Chunk& c : *change_chunks) {
    auto ch = decode_change(c.body);
    ASSERT_TRUE(ch.ok()) << ch.error().message;
    Status st = applied.apply_change(*ch);
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  EXPECT_EQ(applied.to_json(), expected);

  // Both export exactly the ops of Automerge.save(): same order, same succs.
  for (const OpSet* s : {&*from_doc, &applied}) {
    std::vector<ActorId> actors;
    std::vector<Op> ops;
    s->export_ops(&actors, &ops);
    EXPECT_EQ(actors, doc->actors);
    expect_same_ops(ops, ops_of(*doc));
  }
}

TEST_P(NpmFixture, DocumentAndChangesGiveTheSameStateAsNpm) { check_fixture(GetParam()); }

// Randomly corrupted documents and changes are refused or accepted, never crash,
// and whatever is accepted can be viewed and exported.
TEST(OpSet, CorruptedInputsNeverCrash) {
  Bytes saved = read_file(fixture("random", ".amrg"));
  auto chunks = parse_chunks(saved);
  ASSERT_TRUE(chunks.ok());
  auto doc = decode_document((*chunks)[0].body);
  ASSERT_TRUE(doc.ok());
  std::vector<Change> changes;
  Bytes change_bytes = read_file(fixture("random", ".changes"));
  auto change_chunks = parse_chunks(change_bytes);
  ASSERT_TRUE(change_chunks.ok());
  for (const Chunk& c : *change_chunks) {
    auto ch = decode_change(c.body);
    ASSERT_TRUE(ch.ok()) << ch.error().message;
    changes.push_back(std::move(*ch));
  }

  uint64_t state = 12345;
  auto rnd = [&](uint64_t bound) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % bound;
  };
  auto mutate = [&](Op& op, uint32_t actors, uint64_t max_counter) {
    auto some_id = [&]() { return OpId{rnd(max_counter + 2), static_cast<uint32_t>(rnd(actors + 1))}; };
    switch (rnd(9)) {
      case 0: op.obj = some_id(); break;
      case 1: op.key.elem = some_id(); op.key.map_key.reset(); break;
      case 2: op.key.map_key = "k"; break;
      case 3: op.insert = !op.insert; break;
      case 4: op.action = rnd(9); break;
      case 5: op.pred.push_back(some_id()); break;
      case 6: op.id = some_id(); break;
      case 7: op.value = counter_value(3); break;
      case 8: op.mark_name = "m"; break;
    }
  };
  for (int round = 0; round < 300; ++round) {
    DecodedDocument d = *doc;
    for (int k = 0; k < 3; ++k) {
      const size_t i = rnd(d.ops.size());
      Op op = d.op(i);
      mutate(op, d.actors.size(), 200);
      ASSERT_TRUE(d.set_op(i, op));
    }
    auto s = OpSet::from_document(d);
    if (!s.ok()) continue;
    (void)s->to_json().dump();
    std::vector<ActorId> actors;
    std::vector<Op> ops;
    s->export_ops(&actors, &ops);
    EXPECT_EQ(ops.size(), d.ops.size());
  }
  for (int round = 0; round < 100; ++round) {
    OpSet s;
    for (size_t i = 0; i < changes.size(); ++i) {
      Change c = changes[i];
      if (!c.ops.empty() && rnd(20) == 0) mutate(c.ops[rnd(c.ops.size())], 1 + c.other_actors.size(), c.max_op());
      (void)s.apply_change(c);
    }
    (void)s.to_json().dump();
    std::vector<ActorId> actors;
    std::vector<Op> ops;
    s.export_ops(&actors, &ops);
    EXPECT_EQ(ops.size(), s.op_count());
  }
}

// Larger sessions written by `node tools/opset_fixtures.mjs DIR --random N` (run in
// tests/interop).
TEST(OpSetPerf, DISABLED_RandomSessions) {
  const char* dir = getenv("GM_OPSET_RANDOM_DIR");
  ASSERT_NE(dir, nullptr) << "set GM_OPSET_RANDOM_DIR";
  int n = 0;
  for (;; ++n) {
    std::string name = "random_" + std::to_string(n);
    FILE* f = fopen(fixture(name, ".amrg", dir).c_str(), "rb");
    if (!f) break;
    fclose(f);
    check_fixture(name, dir);
  }
  printf("%d sessions checked\n", n);
  EXPECT_GT(n, 0);
}

INSTANTIATE_TEST_SUITE_P(OpSet, NpmFixture, ::testing::Values("concurrent", "counters_scalars", "rich_text", "random"));

}  // namespace
}  // namespace gm::automerge

// ---- the automerge-perf text trace (run with --gtest_also_run_disabled_tests) -----

#include <time.h>

#include <chrono>

namespace gm::automerge {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// CPU time of this process (the shared machine is often loaded; wall time is noisy).
double cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

TEST(OpSetPerf, DISABLED_TextTrace) {
  const char* env = getenv("GM_OPSET_PERF_FILE");
  std::string path = env ? env : std::string(GM_SHARED_DIR) + "/data/automerge-perf/text-doc.amrg";
  Bytes saved = read_file(path);
  auto t0 = std::chrono::steady_clock::now();
  auto chunks = parse_chunks(saved);
  ASSERT_TRUE(chunks.ok()) << chunks.error().message;
  auto doc = decode_document((*chunks)[0].body);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  double decode_ms = ms_since(t0);

  double build_ms = 1e18;
  for (int round = 0; round < 5; ++round) {
    double c0 = cpu_ms();
    auto s = OpSet::from_document(*doc);
    ASSERT_TRUE(s.ok()) << s.error().message;
    build_ms = std::min(build_ms, cpu_ms() - c0);
  }
  auto from_doc = OpSet::from_document(*doc);
  ASSERT_TRUE(from_doc.ok()) << from_doc.error().message;
  t0 = std::chrono::steady_clock::now();
  json view = from_doc->to_json();
  double json_ms = ms_since(t0);
  printf("decode_document %.1f ms, from_document %.1f ms (cpu, best of 5), to_json %.1f ms, %zu ops, ~%.1f MB\n", decode_ms,
         build_ms, json_ms, from_doc->op_count(), from_doc->memory_bytes() / 1e6);

  t0 = std::chrono::steady_clock::now();
  auto rebuilt = expand_document(*doc);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().message;
  double expand_ms = ms_since(t0);
  std::vector<Change> changes;
  changes.reserve(rebuilt->size());
  t0 = std::chrono::steady_clock::now();
  for (const RebuiltChange& rc : *rebuilt) {
    auto c = parse_chunks(rc.chunk);
    ASSERT_TRUE(c.ok());
    auto ch = decode_change((*c)[0].body);
    ASSERT_TRUE(ch.ok()) << ch.error().message;
    changes.push_back(std::move(*ch));
  }
  double decode_changes_ms = ms_since(t0);
  double apply_ms = 1e18;
  OpSet applied;
  for (int round = 0; round < 3; ++round) {
    applied = OpSet();
    double c0 = cpu_ms();
    for (const Change& c : changes) {
      Status st = applied.apply_change(c);
      ASSERT_TRUE(st.ok()) << st.error().message;
    }
    apply_ms = std::min(apply_ms, cpu_ms() - c0);
  }
  t0 = std::chrono::steady_clock::now();
  json applied_view = applied.to_json();
  double json2_ms = ms_since(t0);
  printf("expand %.1f ms, decode %zu changes %.1f ms, apply_change all %.1f ms (cpu, best of 3), to_json %.1f ms, ~%.1f MB\n",
         expand_ms, changes.size(), decode_changes_ms, apply_ms, json2_ms, applied.memory_bytes() / 1e6);
  EXPECT_EQ(applied_view, view);
  if (view.contains("text")) printf("text: %zu bytes\n", view["text"].get_ref<const std::string&>().size());

  std::vector<ActorId> actors;
  std::vector<Op> ops;
  double export_ms = 1e18, cold_ms = 0;
  for (int round = 0; round < 3; ++round) {
    if (round == 0) std::vector<Op>().swap(ops);
    double c0 = cpu_ms();
    applied.export_ops(&actors, &ops);
    if (round == 0) cold_ms = cpu_ms() - c0;
    export_ms = std::min(export_ms, cpu_ms() - c0);
  }
  printf("export_ops %.1f ms cold, %.1f ms warm (cpu), sizeof(Op) %zu\n", cold_ms, export_ms, sizeof(Op));
  double c0 = cpu_ms();
  size_t visited = 0, succs = 0;
  applied.visit_ops([&](const Op& op) {
    ++visited;
    succs += op.pred.size();
  });
  printf("visit_ops %.1f ms (cpu), %zu ops, %zu succs\n", cpu_ms() - c0, visited, succs);
  EXPECT_EQ(visited, ops.size());
  EXPECT_EQ(actors, doc->actors);
  expect_same_ops(ops, ops_of(*doc));
}

}  // namespace
}  // namespace gm::automerge
