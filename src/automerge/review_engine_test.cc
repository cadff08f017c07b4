// Review of 1584fcd (32-bit counters in DecodedDocument rows, 32-bit action codes):
// every path that builds a row must refuse, not silently truncate, what does not fit.
#include <gtest/gtest.h>

#include "automerge/doc_chunk.h"

namespace gm::automerge {
namespace {

// DecodedDocument::add_op / set_op (public; used to build documents in memory) convert
// op ids with RowId(const OpId&), a static_cast<uint32_t> of the counter, and the
// action with static_cast<uint32_t>: an op 4294967297@aa becomes op 1@aa, and the
// unknown action 2^32 + 4 becomes makeText, with no error. The document then encodes
// and decodes as a different, valid document.
TEST(ReviewEngine, AddOpTruncatesCountersAndActionsSilently) {
  DecodedDocument d;
  d.actors.push_back(ActorId{0xaa});
  const uint64_t big = (uint64_t{1} << 32) + 1;
  d.add_change(0, 1, big, 0);
  Op op;
  op.id = OpId{big, 0};
  op.key.map_key = "k";
  op.action = (uint64_t{1} << 32) + static_cast<uint64_t>(Action::kMakeText);
  d.add_op(op);
  EXPECT_EQ(OpId(d.ops[0].id).counter, big) << "op counter truncated to " << d.ops[0].id.counter;
  EXPECT_EQ(uint64_t{d.ops[0].action}, op.action) << "action truncated to " << d.ops[0].action;
  // The truncated row is indistinguishable from a real op 1@aa that makes a text.
  auto decoded = decode_document(encode_document_body(d, false));
  if (decoded.ok()) {
    ADD_FAILURE() << "encoded and decoded without error as op " << decoded->ops[0].id.counter << "@aa, action "
                  << decoded->ops[0].action;
  }
}

}  // namespace
}  // namespace gm::automerge
