#include "automerge/document.h"

#include <gtest/gtest.h>

namespace gm::automerge {
namespace {

// A change chunk by `actor` (one byte) whose columns are runs of `ops` map sets of
// key "a" to null: a few bytes, whatever `ops` is.
Bytes change_claiming(uint8_t actor, uint64_t seq, uint64_t start_op, uint64_t ops) {
  Bytes body;
  put_uleb(body, 0);                                   // deps
  put_uleb(body, 1), body.push_back(actor);            // actor
  put_uleb(body, seq), put_uleb(body, start_op);       // seq, startOp
  put_sleb(body, 0), put_uleb(body, 0), put_uleb(body, 0);  // time, message, other actors
  Bytes run;
  put_sleb(run, static_cast<int64_t>(ops));
  std::vector<std::pair<uint32_t, Bytes>> columns = {
      {0x15, run}, {0x34, {}}, {0x42, run}, {0x56, run}, {0x70, run}};
  append(columns[0].second, Bytes{0x01, 'a'});  // key "a"
  put_uleb(columns[1].second, ops);             // insert: `ops` × false
  columns[2].second.push_back(1);               // action: set
  columns[3].second.push_back(0);               // value: null
  columns[4].second.push_back(0);               // no preds
  put_uleb(body, columns.size());
  for (const auto& [spec, data] : columns) put_uleb(body, spec), put_uleb(body, data.size());
  for (const auto& [spec, data] : columns) append(body, data);
  return make_chunk(ChunkType::kChange, body);
}

TEST(Document, RefusesChangesThatWouldTakeItPastTheOpLimit) {
  Bytes small = change_claiming(0xaa, 1, 1, 3);
  auto doc = Document::load(small);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_EQ(doc->to_json(), nlohmann::json::parse(R"({"a": null})"));

  // Within the per-change limit, but the document already holds 3 ops. Refused from
  // its op count alone (decoding it would take seconds and a gigabyte).
  Bytes big = change_claiming(0xbb, 1, 1, kMaxDocumentRows - 2);
  Bytes both = small;
  append(both, big);
  auto refused = Document::load(both);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("more than " + std::to_string(kMaxDocumentRows - 3) + " ops"),
            std::string::npos)
      << refused.error().message;
}

}  // namespace
}  // namespace gm::automerge
