#include "automerge/transaction.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

namespace gm::automerge {
namespace {

using nlohmann::json;
using ObjType = Transaction::ObjType;

const ActorId kAlice = {0xaa, 0xaa};
const ActorId kBob = {0xbb, 0xbb};

Value str(std::string s) { return Value::string(std::move(s)); }
Value int_value(int64_t i) { return Value::integer(i); }
Value counter(int64_t i) { return Value::integer(i, ValueType::kCounter); }

Transaction::Committed commit(Transaction& tx, Document& doc) {
  Result<std::optional<Transaction::Committed>> c = tx.commit(doc);
  EXPECT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->has_value());
  return **c;
}

Change decode(const Transaction::Committed& c) {
  size_t consumed = 0;
  Result<Chunk> chunk = parse_chunk(c.chunk, &consumed);
  EXPECT_TRUE(chunk.ok());
  Result<Change> change = decode_change(chunk->body);
  EXPECT_TRUE(change.ok()) << change.error().message;
  return *change;
}

TEST(Transaction, MapPutsNestedObjectsAndHeader) {
  Document doc;
  Transaction tx(doc, kAlice, 1700000000, "first");
  ASSERT_TRUE(tx.put(Transaction::root(), "n", int_value(5)).ok());
  Result<Transaction::ObjRef> list = tx.put_object(Transaction::root(), "list", ObjType::kList);
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE(tx.insert(*list, 0, int_value(1)).ok());
  ASSERT_TRUE(tx.insert(*list, 1, int_value(3)).ok());
  ASSERT_TRUE(tx.insert(*list, 1, int_value(2)).ok());
  Result<Transaction::ObjRef> text = tx.put_object(Transaction::root(), "t", ObjType::kText);
  ASSERT_TRUE(tx.splice_text(*text, 0, 0, "h\xc3\xa9😀").ok());
  EXPECT_EQ(tx.length(*text), 3u);  // one element per code point
  Result<Transaction::ObjRef> map = tx.insert_object(*list, 3, ObjType::kMap);
  ASSERT_TRUE(tx.put(*map, "k", str("v")).ok());
  EXPECT_EQ(tx.to_json(Transaction::root()),
            json::parse(R"({"n":5,"list":[1,2,3,{"k":"v"}],"t":"hé😀"})"));
  EXPECT_TRUE(doc.heads().empty());  // nothing before commit

  Transaction::Committed c = commit(tx, doc);
  EXPECT_EQ(doc.to_json(), json::parse(R"({"n":5,"list":[1,2,3,{"k":"v"}],"t":"hé😀"})"));
  ASSERT_EQ(doc.heads().size(), 1u);
  EXPECT_EQ(doc.heads()[0], c.hash);
  Change change = decode(c);
  EXPECT_EQ(change.seq, 1u);
  EXPECT_EQ(change.start_op, 1u);
  EXPECT_EQ(change.time, 1700000000);
  EXPECT_EQ(change.message, "first");
  EXPECT_TRUE(change.deps.empty());
  EXPECT_EQ(change.ops.size(), 11u);

  // The next change follows on: deps = heads, seq + 1, startOp = max op + 1.
  Transaction tx2(doc, kAlice, 1700000001);
  ASSERT_TRUE(tx2.put(Transaction::root(), "n", int_value(6)).ok());
  Transaction::Committed c2 = commit(tx2, doc);
  Change change2 = decode(c2);
  EXPECT_EQ(change2.seq, 2u);
  EXPECT_EQ(change2.start_op, 12u);
  EXPECT_EQ(change2.deps, std::vector<ChangeHash>{c.hash});
  ASSERT_EQ(change2.ops.size(), 1u);
  ASSERT_EQ(change2.ops[0].pred.size(), 1u);
  EXPECT_EQ(change2.ops[0].pred[0].counter, 1u);  // the put of n
  EXPECT_EQ(doc.to_json()["n"], 6);
}

TEST(Transaction, PutOverConflictSupersedesEveryValue) {
  Document a;
  Transaction ta(a, kAlice, 0);
  ASSERT_TRUE(ta.put(Transaction::root(), "x", int_value(1)).ok());
  Transaction::Committed ca = commit(ta, a);
  Document b;
  Transaction tb(b, kBob, 0);
  ASSERT_TRUE(tb.put(Transaction::root(), "x", int_value(2)).ok());
  Transaction::Committed cb = commit(tb, b);
  ASSERT_TRUE(a.apply(cb.chunk).ok());  // x now has two visible values
  EXPECT_EQ(a.to_json()["x"], 2);       // bb > aa: bob's wins

  Transaction t(a, kAlice, 0);
  ASSERT_TRUE(t.put(Transaction::root(), "x", int_value(3)).ok());
  Transaction::Committed c = commit(t, a);
  Change change = decode(c);
  ASSERT_EQ(change.ops.size(), 1u);
  EXPECT_EQ(change.ops[0].pred.size(), 2u);  // both conflicting values
  EXPECT_EQ(change.seq, 2u);
  EXPECT_EQ(change.start_op, 2u);
  EXPECT_EQ(change.deps.size(), 2u);
  EXPECT_EQ(a.to_json()["x"], 3);
  // Bob, loading everything, agrees.
  ASSERT_TRUE(b.apply(ca.chunk).ok());
  ASSERT_TRUE(b.apply(c.chunk).ok());
  EXPECT_EQ(b.to_json(), a.to_json());
}

TEST(Transaction, ListSetDeleteAndCounters) {
  Document doc;
  Transaction tx(doc, kAlice, 0);
  auto list = tx.put_object(Transaction::root(), "l", ObjType::kList);
  ASSERT_TRUE(list.ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(tx.insert(*list, static_cast<size_t>(i), int_value(i)).ok());
  ASSERT_TRUE(tx.put(Transaction::root(), "c", counter(10)).ok());
  ASSERT_TRUE(tx.insert(*list, 4, counter(1)).ok());
  commit(tx, doc);

  Transaction t(doc, kAlice, 0);
  list = t.get(Transaction::root(), "l")->object.value();
  ASSERT_TRUE(t.remove(*list, 1).ok());
  ASSERT_TRUE(t.set(*list, 0, str("zero")).ok());
  ASSERT_TRUE(t.increment(Transaction::root(), "c", -3).ok());
  ASSERT_TRUE(t.increment(*list, 3, 41).ok());
  EXPECT_EQ(t.get(Transaction::root(), "c")->counter_total, 7);
  EXPECT_FALSE(t.increment(*list, 0, 1).ok());  // not a counter
  EXPECT_FALSE(t.remove(*list, 4).ok());        // out of range
  EXPECT_FALSE(t.insert(*list, 5, int_value(0)).ok());
  EXPECT_FALSE(t.remove(Transaction::root(), "absent").ok());
  commit(t, doc);
  EXPECT_EQ(doc.to_json(), json::parse(R"({"l":["zero",2,3,42],"c":7})"));
}

TEST(Transaction, NothingChangesBeforeCommitAndEmptyMakesNoChange) {
  Document doc;
  Transaction tx(doc, kAlice, 0);
  ASSERT_TRUE(tx.put(Transaction::root(), "a", int_value(1)).ok());
  // Dropped: the document never saw it.
  EXPECT_EQ(doc.to_json(), json::object());
  Transaction empty(doc, kAlice, 0);
  Result<std::optional<Transaction::Committed>> c = empty.commit(doc);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
  EXPECT_TRUE(doc.heads().empty());
}

// The first op waits to be applied to a copy of the op set until something reads
// after it or another op follows; each way gives the same change.
TEST(Transaction, AFirstOpThatWaitsGivesTheSameChange) {
  Document base;
  {
    Transaction t(base, kAlice, 0);
    ASSERT_TRUE(t.put(Transaction::root(), "a", int_value(1)).ok());
    ASSERT_TRUE(t.put(Transaction::root(), "b", int_value(2)).ok());
    commit(t, base);
  }
  const Bytes saved = base.save();
  auto fresh = [&] {
    Result<Document> d = Document::load(saved);
    EXPECT_TRUE(d.ok());
    return std::move(*d);
  };
  // One op by an actor new to the document (its table grows at commit, never copied).
  Document one = fresh();
  Transaction t1(one, kBob, 5);
  ASSERT_TRUE(t1.put(Transaction::root(), "a", str("x")).ok());
  Transaction::Committed c1 = commit(t1, one);
  EXPECT_EQ(one.to_json(), json::parse(R"({"a":"x","b":2})"));
  Change change = decode(c1);
  EXPECT_EQ(change.actor, kBob);
  ASSERT_EQ(change.ops.size(), 1u);
  ASSERT_EQ(change.ops[0].pred.size(), 1u);  // supersedes Alice's value
  // The same op, then a read (the copy is made, the op applied to it): the same change.
  Document two = fresh();
  Transaction t2(two, kBob, 5);
  ASSERT_TRUE(t2.put(Transaction::root(), "a", str("x")).ok());
  EXPECT_EQ(t2.to_json(Transaction::root()), json::parse(R"({"a":"x","b":2})"));
  EXPECT_EQ(two.to_json(), json::parse(R"({"a":1,"b":2})"));  // not before commit
  EXPECT_EQ(commit(t2, two).chunk, c1.chunk);
  // Two ops: the second sees the first (its pred is the first op).
  Document three = fresh();
  Transaction t3(three, kBob, 5);
  ASSERT_TRUE(t3.put(Transaction::root(), "c", int_value(3)).ok());
  ASSERT_TRUE(t3.put(Transaction::root(), "c", int_value(4)).ok());
  Change c3 = decode(commit(t3, three));
  ASSERT_EQ(c3.ops.size(), 2u);
  ASSERT_EQ(c3.ops[1].pred.size(), 1u);
  EXPECT_EQ(c3.ops[1].pred[0].counter, c3.start_op);
  EXPECT_EQ(three.to_json(), json::parse(R"({"a":1,"b":2,"c":4})"));
}

TEST(Transaction, StaleTransactionIsRefused) {
  Document doc;
  Transaction t1(doc, kAlice, 0), t2(doc, kBob, 0);
  ASSERT_TRUE(t1.put(Transaction::root(), "a", int_value(1)).ok());
  ASSERT_TRUE(t2.put(Transaction::root(), "b", int_value(1)).ok());
  commit(t1, doc);
  EXPECT_FALSE(t2.commit(doc).ok());
  EXPECT_EQ(doc.to_json(), json::parse(R"({"a":1})"));
}

TEST(Transaction, SpliceAroundTombstonesAndConcurrentInserts) {
  Document a;
  Transaction t(a, kAlice, 0);
  auto text = t.put_object(Transaction::root(), "t", ObjType::kText);
  ASSERT_TRUE(t.splice_text(*text, 0, 0, "abcdef").ok());
  ASSERT_TRUE(t.splice_text(*text, 1, 2, "").ok());  // "adef"
  ASSERT_TRUE(t.splice_text(*text, 1, 0, "XY").ok());  // "aXYdef"
  EXPECT_FALSE(t.splice_text(*text, 5, 2, "").ok());
  commit(t, a);
  EXPECT_EQ(a.to_json()["t"], "aXYdef");

  // Bob edits concurrently at the end; alice replaces the middle: both survive.
  Document b = *Document::load(a.save());
  Transaction tb(b, kBob, 0);
  ASSERT_TRUE(tb.splice_text(*tb.get(Transaction::root(), "t")->object, 6, 0, "!").ok());
  Transaction::Committed cb = commit(tb, b);
  Transaction ta(a, kAlice, 0);
  ASSERT_TRUE(ta.splice_text(*ta.get(Transaction::root(), "t")->object, 1, 2, "-").ok());
  Transaction::Committed ca = commit(ta, a);
  ASSERT_TRUE(a.apply(cb.chunk).ok());
  ASSERT_TRUE(b.apply(ca.chunk).ok());
  EXPECT_EQ(a.to_json()["t"], "a-def!");
  EXPECT_EQ(b.to_json(), a.to_json());
}

TEST(Transaction, OpLimit) {
  Document doc;
  Transaction tx(doc, kAlice, 0);
  tx.set_max_ops(3);
  auto text = tx.put_object(Transaction::root(), "t", ObjType::kText);
  Status s = tx.splice_text(*text, 0, 0, "abc");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kOverLimit);
}

TEST(Document, ToJsonAtHeads) {
  Document doc;
  std::vector<ChangeHash> heads;
  for (int i = 0; i < 3; ++i) {
    Transaction t(doc, kAlice, 0);
    ASSERT_TRUE(t.put(Transaction::root(), "v", int_value(i)).ok());
    heads.push_back(commit(t, doc).hash);
  }
  for (int i = 0; i < 3; ++i) {
    Result<json> view = doc.to_json_at(std::vector<ChangeHash>{heads[static_cast<size_t>(i)]});
    ASSERT_TRUE(view.ok()) << view.error().message;
    EXPECT_EQ((*view)["v"], i);
  }
  EXPECT_EQ(*doc.to_json_at({}), json::object());
  ChangeHash unknown;
  unknown.bytes[0] = 1;
  Result<json> bad = doc.to_json_at(std::vector<ChangeHash>{unknown});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kNotFound);
}

// Against npm 3.5.0's view(doc, heads): fixtures from tests/interop/tools/view_fixtures.mjs.
TEST(Document, ToJsonAtHeadsMatchesNpmView) {
  const std::string dir = GM_SOURCE_DIR "/src/automerge/testdata/";
  std::ifstream saved(dir + "view_history.amrg", std::ios::binary);
  ASSERT_TRUE(saved) << "missing fixture";
  Bytes bytes((std::istreambuf_iterator<char>(saved)), std::istreambuf_iterator<char>());
  Result<Document> doc = Document::load(bytes);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  std::ifstream views(dir + "view_history.json");
  json cases = json::parse(views);
  ASSERT_GE(cases.size(), 5u);
  for (const json& c : cases) {
    std::vector<ChangeHash> heads;
    for (const json& h : c["heads"]) heads.push_back(*ChangeHash::from_hex(h.get<std::string>()));
    Result<json> view = doc->to_json_at(heads);
    ASSERT_TRUE(view.ok()) << view.error().message;
    EXPECT_EQ(*view, c["json"]) << c["heads"].dump();
  }
}

}  // namespace
}  // namespace gm::automerge

namespace gm::automerge {
namespace {

// Review: copy-on-first-need must not change what a transaction authors. Each sequence
// reads its own writes; run once as is (the first op waits) and once with a read after
// every op (the copy made at once): the same change, and the expected JSON.
TEST(Transaction, ReadYourWritesSequencesGiveTheSameChangeLazyOrEager) {
  Document base;
  {
    Transaction t(base, kAlice, 0);
    ASSERT_TRUE(t.put(Transaction::root(), "a", int_value(1)).ok());
    auto l = t.put_object(Transaction::root(), "l", ObjType::kList);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(t.insert(*l, static_cast<size_t>(i), int_value(i)).ok());
    auto tx = t.put_object(Transaction::root(), "t", ObjType::kText);
    ASSERT_TRUE(t.splice_text(*tx, 0, 0, "hello").ok());
    ASSERT_TRUE(t.put(Transaction::root(), "c", counter(5)).ok());
    commit(t, base);
  }
  const Bytes saved = base.save();
  using Step = std::function<Status(Transaction&)>;
  auto root = Transaction::root();
  auto obj = [](Transaction& t, const char* k) { return t.get(Transaction::root(), k)->object.value(); };
  struct Case {
    const char* name;
    std::vector<Step> steps;
    const char* expected;
  };
  std::vector<Case> cases = {
      {"delete then re-put",
       {[&](Transaction& t) { return t.remove(root, "a"); }, [&](Transaction& t) { return t.put(root, "a", int_value(2)); }},
       R"({"a":2,"l":[0,1,2],"t":"hello","c":5})"},
      {"put twice then delete",
       {[&](Transaction& t) { return t.put(root, "a", int_value(7)); },
        [&](Transaction& t) { return t.put(root, "a", int_value(8)); },
        [&](Transaction& t) { return t.remove(root, "a"); }},
       R"({"l":[0,1,2],"t":"hello","c":5})"},
      {"counter made then incremented",
       {[&](Transaction& t) { return t.put(root, "k", counter(1)); },
        [&](Transaction& t) { return t.increment(root, "k", 2); },
        [&](Transaction& t) { return t.increment(root, "k", 3); }},
       R"({"a":1,"l":[0,1,2],"t":"hello","c":5,"k":6})"},
      {"increment existing twice",
       {[&](Transaction& t) { return t.increment(root, "c", 2); }, [&](Transaction& t) { return t.increment(root, "c", 3); }},
       R"({"a":1,"l":[0,1,2],"t":"hello","c":10})"},
      {"list insert then set and delete",
       {[&](Transaction& t) { return t.insert(obj(t, "l"), 0, int_value(9)); },
        [&](Transaction& t) { return t.set(obj(t, "l"), 0, int_value(8)); },
        [&](Transaction& t) { return t.remove(obj(t, "l"), 1); },
        [&](Transaction& t) { return t.insert(obj(t, "l"), 3, int_value(7)); }},
       R"({"a":1,"l":[8,1,2,7],"t":"hello","c":5})"},
      {"list delete then set at same index",
       {[&](Transaction& t) { return t.remove(obj(t, "l"), 0); }, [&](Transaction& t) { return t.set(obj(t, "l"), 0, int_value(5)); }},
       R"({"a":1,"l":[5,2],"t":"hello","c":5})"},
      {"text splices after inserts",
       {[&](Transaction& t) { return t.splice_text(obj(t, "t"), 5, 0, " world"); },
        [&](Transaction& t) { return t.splice_text(obj(t, "t"), 0, 1, "J"); },
        [&](Transaction& t) { return t.splice_text(obj(t, "t"), 4, 3, "!"); }},
       R"({"a":1,"l":[0,1,2],"t":"Jell!orld","c":5})"},
      {"text delete-only first",
       {[&](Transaction& t) { return t.splice_text(obj(t, "t"), 1, 2, ""); },
        [&](Transaction& t) { return t.splice_text(obj(t, "t"), 1, 0, "EL"); }},
       R"({"a":1,"l":[0,1,2],"t":"hELlo","c":5})"},
      {"nested objects then puts",
       {[&](Transaction& t) { return t.put(root, "a", int_value(3)); },
        [&](Transaction& t) -> Status {
          auto m = t.put_object(root, "m", ObjType::kMap);
          if (!m.ok()) return m.error();
          auto inner = t.put_object(*m, "inner", ObjType::kList);
          if (!inner.ok()) return inner.error();
          GM_TRY(t.insert(*inner, 0, str("x")));
          auto deep = t.insert_object(*inner, 1, ObjType::kMap);
          if (!deep.ok()) return deep.error();
          return t.put(*deep, "y", int_value(1));
        },
        [&](Transaction& t) { return t.put(obj(t, "m"), "z", int_value(2)); }},
       R"({"a":3,"l":[0,1,2],"t":"hello","c":5,"m":{"inner":["x",{"y":1}],"z":2}})"},
  };
  for (const Case& c : cases) {
    std::vector<Bytes> chunks;
    for (bool eager : {false, true}) {
      Result<Document> d = Document::load(saved);
      ASSERT_TRUE(d.ok());
      Transaction t(*d, kBob, 9);
      for (const Step& s : c.steps) {
        Status st = s(t);
        ASSERT_TRUE(st.ok()) << c.name << (eager ? " eager: " : " lazy: ") << st.error().message;
        if (eager) (void)t.to_json(Transaction::root());
      }
      EXPECT_EQ(t.to_json(Transaction::root()), json::parse(c.expected)) << c.name << (eager ? " eager" : " lazy");
      Transaction::Committed committed = commit(t, *d);
      EXPECT_EQ(d->to_json(), json::parse(c.expected)) << c.name << (eager ? " eager" : " lazy");
      chunks.push_back(committed.chunk);
    }
    EXPECT_EQ(chunks[0], chunks[1]) << c.name;
  }
}

}  // namespace
}  // namespace gm::automerge
