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
//
// Op columns (§1.7), one row per op, op i having id (startOp + i, author):
//   spec  column        type      content
//   0x01  obj actor     actor     null = root object
//   0x02  obj counter   uLEB RLE  null = root object
//   0x11  key actor     actor     element id actor; null for map keys and HEAD
//   0x13  key counter   delta     element id counter; 0 = HEAD; null for map keys
//   0x15  key string    string    map key; null for sequence ops
//   0x34  insert        boolean
//   0x42  action        uLEB RLE  0..7 (§1.8)
//   0x56  value meta    uLEB RLE  byte length << 4 | value type
//   0x57  value         raw       concatenated value bytes
//   0x70  pred count    group     number of preds of the op
//   0x71  pred actor    actor     one per pred
//   0x73  pred counter  delta     one per pred (the delta runs across ops)
//   0x94  expand        boolean   mark expand flag; omitted when all false
//   0xa5  mark name     string    mark-begin name; omitted when all null
// Actor indexes: 0 = author, 1.. = other actors. The canonical encoder omits empty
// columns; DEFLATEd columns are not allowed in change chunks.
#pragma once

#include <functional>
#include <span>

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

  // The change's actor table: index 0 is the author, 1.. are other_actors. Op ids in
  // a decoded Change index this table.
  size_t actor_count() const { return 1 + other_actors.size(); }
  const ActorId& actor_at(uint32_t index) const { return index == 0 ? actor : other_actors[index - 1]; }
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

// A hostile change of a few bytes can claim billions of identical ops (one RLE run
// per column); decoding refuses more than this many ops (or pred entries) instead of
// allocating for them. About 4M ops is far beyond any real change (an op in memory
// is about 250 bytes).
inline constexpr size_t kDefaultMaxChangeOps = size_t{1} << 22;

struct ChangeDecodeOptions {
  // Reject a change whose columns are not exactly what the canonical encoder writes
  // (§1.6, §1.7), so that encode_change_body(decode_change(b)) == b always holds.
  // The reference implementation accepts non-canonical (but well-formed) columns;
  // pass false to accept them too (re-encoding such a change changes its hash).
  bool require_canonical = true;
  size_t max_ops = kDefaultMaxChangeOps;
};

// The number of ops a change chunk body holds (the rows of its action column), read
// from the column headers without decoding any op; more than `limit` is an error.
// Checks the header fields as decode_change_header does.
Result<size_t> count_change_ops(ByteView body, size_t limit = kDefaultMaxChangeOps);

// Decodes a change chunk body (not the chunk header). Checks, beyond well-formed
// columns: no DEFLATEd columns; every op has an action 0..7 (the reference rejects
// other codes), a key that is either a string or an element id (HEAD = counter 0, no
// actor), actor indexes within [author, other actors], op counters >= 1, a pred
// count and that many (actor, counter) pairs, int/uint values on increments, valid
// UTF-8 in the message, keys, mark names and string values, and startOp < 2^32 (as
// the reference). Unknown columns are kept in `unknown_columns`.
Result<Change> decode_change(ByteView body, const ChangeDecodeOptions& options = {});

// Decodes `count` op rows of change-style op columns (obj, key, insert, action, value,
// preds, expand, mark name: the table above) onto the end of `ops`, their ids left
// unset, every actor index checked against `actor_count` and every value and string as
// decode_change checks them; at most *pred_budget preds in all (reduced by what is
// read). Bundles (bundle.h) share it: their object counters are a delta column
// (kBundleOpObjCounter) when `delta_obj_counter`.
Status decode_op_rows(const std::vector<ColumnInfo>& columns, size_t count, size_t actor_count, std::vector<Op>& ops,
                      size_t* pred_budget, bool delta_obj_counter = false);

// Encodes a change chunk body with the canonical encoders; decode_change followed by
// encode_change_body reproduces the input exactly. The change is not validated:
// actor indexes must be within the change's actor table. Encoding reuses per-thread
// scratch buffers, so it allocates little beyond the result.
Bytes encode_change_body(const Change& change);

// The whole type-1 chunk; sets *hash to the change hash.
Bytes encode_change(const Change& change, ChangeHash* hash = nullptr);
// The same chunk appended to `out` (no allocation beyond out's growth once warmed up).
void append_change_chunk(Bytes& out, const Change& change, ChangeHash* hash = nullptr);
// Op i of a change (0-based), for an encoder that takes them one at a time. The
// reference stays valid until the next call.
using OpSource = std::function<const Op&(size_t i)>;
// The same, with the `op_count` ops given one at a time by `ops` instead of
// change.ops (ignored): a change of millions of ops is encoded without holding them.
void append_change_chunk(Bytes& out, const Change& change, size_t op_count, const OpSource& ops,
                         ChangeHash* hash = nullptr);

// Actor-index helpers for moving ops between a change's actor table and a larger
// one (a document's).
//
// Rewrites every actor index in the ops (id, obj, key element, preds) through
// `table`: index i becomes table[i]. `table` must cover the change's actor table,
// e.g. table[i] = document index of change.actor_at(i).
void remap_change_actors(Change& change, std::span<const uint32_t> table);

// For a change whose ops index `actors` (e.g. a document's actor table) and whose
// `actor` is set: fills other_actors with every other actor the ops reference,
// sorted (§1.3), and rewrites the ops' indexes to the change's own table. Op ids
// must all name the author. Preds are left in their order (Lamport order is the
// caller's job).
void localize_change_actors(Change& change, std::span<const ActorId> actors);

}  // namespace gm::automerge
