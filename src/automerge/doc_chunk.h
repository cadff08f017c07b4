// Document chunks (type 0) (spec/automerge.md §1.9–§1.11): decoding, expansion into
// the change chunks they summarise, and encoding.
//
// Body layout:
//   actors              uLEB n, each uLEB length + bytes, sorted
//   heads               uLEB n, n × 32-byte hashes, sorted
//   change col. meta    §1.5
//   op col. meta        §1.5
//   change col. data
//   op col. data
//   heads index         one uLEB per head (may be absent in old files)
#pragma once

#include "automerge/change.h"

namespace gm::automerge {

// A document chunk in decoded form. OpId::actor indexes `actors`.
struct DecodedDocument {
  struct ChangeRow {
    uint32_t actor = 0;
    uint64_t seq = 0;
    uint64_t max_op = 0;
    int64_t time = 0;
    std::string message;        // empty = none
    std::vector<uint64_t> deps;  // row indexes of earlier changes, in hash order
    Bytes extra;
  };

  std::vector<ActorId> actors;
  std::vector<ChangeHash> heads;
  std::vector<ChangeRow> changes;  // topological (application) order
  // Ops in document order (§1.10). Each op's `pred` field holds its succ list,
  // sorted in Lamport order. Delete ops are not stored.
  std::vector<Op> ops;
  std::vector<uint64_t> heads_index;
};

// Decodes a document chunk body (DEFLATEd columns are inflated).
Result<DecodedDocument> decode_document(ByteView body);

// One change chunk rebuilt from a document.
struct RebuiltChange {
  Bytes chunk;  // a type-1 chunk
  ChangeHash hash;
};

// Rebuilds every change chunk of the document byte for byte (§1.11), in the order
// of `doc.changes`, and checks that the changes no other change depends on are
// exactly `doc.heads`.
Result<std::vector<RebuiltChange>> expand_document(const DecodedDocument& doc);

// Encodes a document chunk (header included). With `compress`, every column of 256
// bytes or more is raw-DEFLATEd, as Automerge.save() does. `heads_index` is
// recomputed from `heads` and `changes` when empty.
Bytes encode_document(const DecodedDocument& doc, bool compress = true);

}  // namespace gm::automerge
