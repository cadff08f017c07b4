// Bundle chunks (type 3): a set of changes (not necessarily a whole document) stored
// column by column, each op with its preds, so that the changes can be rebuilt without
// the document they came from. Written by Automerge.saveBundle(doc, hashes) (npm 3.2
// and later, experimental there) and read by Automerge.load / loadIncremental. Not in
// spec/automerge.md: the layout below is read from the reference implementation
// (rust/automerge/src/storage/bundle) and checked against npm 3.5.0; docs/bundles.md
// describes it at more length.
//
// Body layout:
//   deps               uLEB n, n × 32-byte hashes: changes outside the bundle that
//                      its changes depend on
//   actors             uLEB n, each uLEB length + bytes
//   change col. meta   §1.5: uLEB count, (spec, length) pairs
//   change col. data   one row per change, each after the bundle's changes it depends on
//   op col. meta       §1.5
//   op col. data       one row per op of those changes, deletes included, in document
//                      order (§1.10)
//   (bytes after the op columns are ignored, as the reference ignores them)
//
// Change columns (spec hex): actor 01, seq delta 03, startOp delta 13, maxOp delta 23,
// time delta 33, message string 45, deps group 50 + dep delta 53 (a dep below the row
// count is a row of the bundle, an earlier one; dep = row count + i is deps[i]),
// extra bytes group 60 (their length) + raw 67.
// Op columns: obj actor/counter(delta) 01/03, key actor/counter(delta)/string 11/13/15,
// id actor 21, insert 34, action 42, value 56/57, pred group/actor/counter(delta)
// 70/71/73, expand 94, mark name a5, and the op id counters in one of two forms:
//   b3  delta (npm 3.3 and later): taking the changes in (actor index, seq) order and
//       each change's ops by counter, the op row of each
//   23  delta (npm 3.2): the counter of each op row
// Spec bit 3 set = that column's data is raw DEFLATE (npm 3.3 and later compress
// columns of 256 bytes or more). Any other column is refused, as the reference does.
#pragma once

#include "automerge/doc_chunk.h"

namespace gm::automerge {

// Rebuilds the change chunks of a bundle chunk body, in the bundle's row order (each
// after the bundle's changes it depends on), with their hashes. Checks every index,
// that the op rows are exactly the ops of the changes (op i of a change has counter
// startOp + i and the change's actor), op counters below 2^32, and the values and
// strings as decode_change does. Run-length columns let a few bytes claim millions of
// rows: more than `max_rows` change rows, op rows or preds are refused (0 means
// document_row_limit(body.size())), and rebuilt chunks past `max_bytes`.
Result<ExpandedDocument> expand_bundle(ByteView body, size_t max_rows = 0, size_t max_bytes = SIZE_MAX);

}  // namespace gm::automerge
