// Change chunks (type 1) (spec/automerge.md §1.3, §1.7).
//
// Body layout:
//   deps          uLEB n, n × 32-byte hashes, sorted
//   actor         uLEB length + bytes (the author)
//   seq           uLEB
//   startOp       uLEB
//   time          sLEB
//   message       uLEB length + UTF-8 (length 0 = no message)
//   other actors  uLEB n, each uLEB length + bytes, sorted
//   op columns    column metadata then data (§1.5, §1.7)
//   extra bytes   the rest, preserved verbatim
#pragma once

#include "automerge/chunk.h"
#include "automerge/columns.h"

namespace gm::automerge {

// The fields before the op columns: all a change graph or a relay needs.
struct ChangeHeader {
  std::vector<ChangeHash> deps;
  ActorId actor;
  uint64_t seq = 0;
  uint64_t start_op = 0;
  int64_t time = 0;
  std::string message;  // empty = no message
  std::vector<ActorId> other_actors;
};

// Reads the header fields of a change chunk body; `rest` (if non-null) receives the
// bytes after the other-actors list (column metadata onwards).
Result<ChangeHeader> decode_change_header(ByteView body, ByteView* rest = nullptr);

// A fully decoded change. In `ops`, OpId::actor indexes [actor, other_actors...]
// (0 = the author); op i has id (start_op + i, 0) and `pred` holds its predecessors.
struct Change : ChangeHeader {
  std::vector<Op> ops;
  Bytes extra;
  // Columns this implementation does not know, kept so that encoding reproduces
  // the input.
  std::vector<std::pair<uint32_t, Bytes>> unknown_columns;

  uint64_t max_op() const { return start_op + ops.size() - 1; }
};

// Decodes a change chunk body (not the chunk header).
Result<Change> decode_change(ByteView body);

// Encodes a change chunk body with the canonical encoders; decode_change followed by
// encode_change_body reproduces the input exactly.
Bytes encode_change_body(const Change& change);

// The whole type-1 chunk; sets *hash to the change hash.
Bytes encode_change(const Change& change, ChangeHash* hash = nullptr);

}  // namespace gm::automerge
