#include "automerge/json_patch.h"

#include <gtest/gtest.h>

namespace gm::automerge {
namespace {

using nlohmann::json;

const ActorId kApi = {0xa1, 0xa1};

// A document holding `start` as npm 3.x would write it (strings as text), made by
// a first patch from {}.
Document make(const json& start) {
  Document doc;
  auto ops = parse_json_patch(json::array({{{"op", "replace"}, {"path", ""}, {"value", start}}}));
  EXPECT_TRUE(ops.ok()) << ops.error().message;
  auto c = apply_json_patch(doc, *ops, {kApi, 1, ""});
  EXPECT_TRUE(c.ok()) << c.error().message;
  return doc;
}

Result<std::optional<Transaction::Committed>> patch(Document& doc, const char* text) {
  auto ops = parse_json_patch(std::string_view(text));
  if (!ops) return ops.error();
  return apply_json_patch(doc, *ops, {kApi, 2, "api"});
}

Change decode(const Transaction::Committed& c) {
  size_t consumed = 0;
  Result<Chunk> chunk = parse_chunk(c.chunk, &consumed);
  EXPECT_TRUE(chunk.ok());
  Result<Change> change = decode_change(chunk->body);
  EXPECT_TRUE(change.ok());
  return *change;
}

// Applies a patch that must succeed and returns its change's ops.
std::vector<Op> ok_ops(Document& doc, const char* text) {
  auto c = patch(doc, text);
  EXPECT_TRUE(c.ok()) << text << ": " << c.error().message;
  if (!c.ok() || !c->has_value()) return {};
  return decode(**c).ops;
}

TEST(JsonPointer, Parses) {
  EXPECT_EQ(*parse_json_pointer(""), std::vector<std::string>{});
  EXPECT_EQ(*parse_json_pointer("/"), std::vector<std::string>{""});
  EXPECT_EQ(*parse_json_pointer("/a~1b/m~0n/~01"), (std::vector<std::string>{"a/b", "m~n", "~1"}));
  EXPECT_FALSE(parse_json_pointer("a").ok());
  EXPECT_FALSE(parse_json_pointer("/a~2").ok());
  EXPECT_FALSE(parse_json_pointer("/a~").ok());
}

TEST(JsonPatch, AddWritesNpmTypes) {
  Document doc = make(json::object());
  std::vector<Op> ops = ok_ops(doc, R"([{"op":"add","path":"/s","value":"hé"},
    {"op":"add","path":"/i","value":5},{"op":"add","path":"/f","value":1.5},{"op":"add","path":"/g","value":2.0},
    {"op":"add","path":"/big","value":18446744073709551615},{"op":"add","path":"/n","value":null},
    {"op":"add","path":"/b","value":true}])");
  ASSERT_EQ(ops.size(), 9u);
  EXPECT_EQ(ops[0].action, static_cast<uint64_t>(Action::kMakeText));  // a string is text
  EXPECT_EQ(ops[1].value.bytes, "h");
  EXPECT_EQ(ops[2].value.bytes, "\xc3\xa9");  // one op per code point
  EXPECT_EQ(ops[3].value.kind(), ValueType::kInt);
  EXPECT_EQ(ops[4].value.kind(), ValueType::kF64);
  EXPECT_EQ(ops[5].value.kind(), ValueType::kInt);  // 2.0 is the JS number 2
  EXPECT_EQ(ops[6].value.kind(), ValueType::kUint);
  EXPECT_EQ(doc.to_json(), json::parse(R"({"s":"hé","i":5,"f":1.5,"g":2,"big":18446744073709551615,
    "n":null,"b":true})"));
}

TEST(JsonPatch, ListsAndEscapes) {
  Document doc = make(json::parse(R"({"l":[1,2],"a/b":{"m~n":1}})"));
  ok_ops(doc, R"([{"op":"add","path":"/l/-","value":3},{"op":"add","path":"/l/0","value":0},
    {"op":"remove","path":"/l/1"},{"op":"replace","path":"/l/0","value":[true]},
    {"op":"replace","path":"/a~1b/m~0n","value":2}])");
  EXPECT_EQ(doc.to_json(), json::parse(R"({"l":[[true],2,3],"a/b":{"m~n":2}})"));
}

TEST(JsonPatch, ReplaceOfTextIsTheSmallestSplice) {
  Document doc = make(json::parse(R"({"t":"The quick brown fox"})"));
  std::vector<Op> ops = ok_ops(doc, R"([{"op":"replace","path":"/t","value":"The quick red fox"}])");
  // Common prefix "The quick " and suffix " fox": "brown" -> "red" (5 deletes, 3 inserts).
  size_t dels = 0, inserts = 0;
  for (const Op& op : ops) (op.action == static_cast<uint64_t>(Action::kDelete) ? dels : inserts)++;
  EXPECT_EQ(dels, 5u);
  EXPECT_EQ(inserts, 3u);
  EXPECT_EQ(doc.to_json()["t"], "The quick red fox");
  // Equal text: no op, so no change at all.
  auto same = patch(doc, R"([{"op":"replace","path":"/t","value":"The quick red fox"}])");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->has_value());
  // Emoji count as one code point each.
  ops = ok_ops(doc, R"([{"op":"replace","path":"/t","value":"The quick red 😀 fox"}])");
  EXPECT_EQ(ops.size(), 2u);
  EXPECT_EQ(doc.to_json()["t"], "The quick red 😀 fox");
}

TEST(JsonPatch, ScalarStringStaysScalar) {
  Document doc;
  Transaction tx(doc, kApi, 0);
  Value s;
  s.type = static_cast<uint8_t>(ValueType::kString);
  s.bytes = "v1";
  ASSERT_TRUE(tx.put(Transaction::root(), "s", s).ok());
  ASSERT_TRUE(tx.commit(doc).ok());
  std::vector<Op> ops = ok_ops(doc, R"([{"op":"replace","path":"/s","value":"v2"}])");
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].action, static_cast<uint64_t>(Action::kSet));
  EXPECT_EQ(ops[0].value.kind(), ValueType::kString);
  EXPECT_EQ(doc.to_json()["s"], "v2");
}

TEST(JsonPatch, CountersChangeByIncrements) {
  Document doc;
  Transaction tx(doc, kApi, 0);
  Value c;
  c.type = static_cast<uint8_t>(ValueType::kCounter);
  c.int_value = 10;
  ASSERT_TRUE(tx.put(Transaction::root(), "c", c).ok());
  ASSERT_TRUE(tx.commit(doc).ok());
  std::vector<Op> ops = ok_ops(doc, R"([{"op":"replace","path":"/c","value":7}])");
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].action, static_cast<uint64_t>(Action::kIncrement));
  EXPECT_EQ(ops[0].value.int_value, -3);
  EXPECT_EQ(doc.to_json()["c"], 7);
  // A copy keeps the counter type and value.
  ok_ops(doc, R"([{"op":"copy","from":"/c","path":"/d"}])");
  ops = ok_ops(doc, R"([{"op":"replace","path":"/d","value":8}])");
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].action, static_cast<uint64_t>(Action::kIncrement));
  // Anything but an integer overwrites it.
  ops = ok_ops(doc, R"([{"op":"replace","path":"/c","value":"x"}])");
  EXPECT_EQ(doc.to_json(), json::parse(R"({"c":"x","d":8})"));
}

TEST(JsonPatch, MoveAndCopy) {
  Document doc = make(json::parse(R"({"a":{"t":"txt","l":[1,2,3]},"b":[]})"));
  ok_ops(doc, R"([{"op":"move","from":"/a/l/0","path":"/a/l/2"},{"op":"copy","from":"/a","path":"/a/self"},
    {"op":"move","from":"/a/t","path":"/b/0"},{"op":"move","from":"/b","path":"/b"}])");
  EXPECT_EQ(doc.to_json(), json::parse(R"({"a":{"l":[2,3,1],"self":{"t":"txt","l":[2,3,1]}},"b":["txt"]})"));
  auto into_itself = patch(doc, R"([{"op":"move","from":"/a","path":"/a/x"}])");
  ASSERT_FALSE(into_itself.ok());
  EXPECT_EQ(into_itself.error().code, ErrorCode::kInvalid);
}

TEST(JsonPatch, RootReplace) {
  Document doc = make(json::parse(R"({"a":1,"b":"x"})"));
  ok_ops(doc, R"([{"op":"replace","path":"","value":{"b":"xy","c":[]}}])");
  EXPECT_EQ(doc.to_json(), json::parse(R"({"b":"xy","c":[]})"));
  EXPECT_FALSE(patch(doc, R"([{"op":"replace","path":"","value":[1]}])").ok());
  EXPECT_FALSE(patch(doc, R"([{"op":"remove","path":""}])").ok());
}

TEST(JsonPatch, TestOpAndAtomicity) {
  Document doc = make(json::parse(R"({"a":1,"t":"hi","l":[1.0]})"));
  const std::vector<ChangeHash> heads = doc.heads();
  const json before = doc.to_json();
  auto passed = patch(doc, R"([{"op":"test","path":"/a","value":1.0},{"op":"test","path":"/t","value":"hi"},
    {"op":"test","path":"","value":{"l":[1],"t":"hi","a":1}}])");
  ASSERT_TRUE(passed.ok()) << passed.error().message;
  EXPECT_FALSE(passed->has_value());  // tests alone change nothing

  // Earlier ops of a failing patch never reach the document.
  auto failed = patch(doc, R"([{"op":"add","path":"/z","value":1},{"op":"test","path":"/a","value":2}])");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(failed.error().message.find("operation 1"), std::string::npos) << failed.error().message;
  EXPECT_EQ(doc.heads(), heads);
  EXPECT_EQ(doc.to_json(), before);

  auto missing = patch(doc, R"([{"op":"add","path":"/z","value":1},{"op":"remove","path":"/nope"}])");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(doc.heads(), heads);
  EXPECT_EQ(doc.to_json(), before);
}

TEST(JsonPatch, BadPathsAndOps) {
  Document doc = make(json::parse(R"({"a":1,"t":"hi","l":[1]})"));
  const char* bad[] = {
      R"({"op":"add","path":"/a","value":1})",         // not an array
      R"([{"op":"nope","path":"/a"}])",                 // unknown op
      R"([{"op":"add","path":"a","value":1}])",         // pointer without "/"
      R"([{"op":"add","path":"/x"}])",                  // no value
      R"([{"op":"copy","path":"/x"}])",                 // no from
      R"([{"op":"replace","path":"/x","value":1}])",    // replace of a missing member
      R"([{"op":"add","path":"/a/b","value":1}])",      // into a scalar
      R"([{"op":"add","path":"/t/0","value":"x"}])",    // into a string
      R"([{"op":"add","path":"/l/2","value":1}])",      // index past the end
      R"([{"op":"add","path":"/l/01","value":1}])",     // leading zero
      R"([{"op":"remove","path":"/l/-"}])",             // "-" names nothing
      R"([{"op":"add","path":"/missing/x","value":1}])",
      R"([1])",
      "not json",
  };
  for (const char* text : bad) {
    auto r = patch(doc, text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalid) << text << ": " << r.error().message;
  }
}

TEST(JsonPatch, Limits) {
  json many = json::array();
  for (size_t i = 0; i <= kMaxPatchOperations; ++i) many.push_back({{"op", "test"}, {"path", ""}, {"value", 1}});
  auto r = parse_json_patch(many);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverLimit);

  json deep = 1;
  for (size_t i = 0; i < kMaxPatchValueDepth; ++i) deep = json::array({deep});
  r = parse_json_patch(json::array({{{"op", "add"}, {"path", "/x"}, {"value", deep}}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverLimit);

  r = parse_json_patch(
      json::array({{{"op", "add"}, {"path", "/x"}, {"value", std::string(kMaxPatchStringBytes + 1, 'a')}}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverLimit);
}

TEST(JsonPatch, SecondChangeFollowsTheFirst) {
  Document doc = make(json::parse(R"({"a":1})"));
  auto c = patch(doc, R"([{"op":"replace","path":"/a","value":2}])");
  ASSERT_TRUE(c.ok());
  Change change = decode(**c);
  EXPECT_EQ(change.seq, 2u);
  EXPECT_EQ(change.time, 2);
  EXPECT_EQ(change.message, "api");
  EXPECT_EQ(change.deps.size(), 1u);
  ASSERT_EQ(change.ops.size(), 1u);
  EXPECT_EQ(change.ops[0].pred.size(), 1u);
}

}  // namespace
}  // namespace gm::automerge
