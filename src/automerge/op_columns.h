// The op column specs (spec/automerge.md §1.7, §1.9), defined once for the chunk
// types that hold ops: change chunks (change.h), document chunks (doc_chunk.h) and
// bundles (bundle.h, which use the change chunk's columns with an op id).
// Both use the same columns except that a change chunk's ops carry their preds (id 7)
// and take their ids from the change's startOp, while a document chunk's ops carry
// their own ids (id 2) and their succs (id 8). Each header describes its layout.
#pragma once

#include "automerge/columns.h"

namespace gm::automerge {

inline constexpr uint32_t kOpObjActor = column_spec(0, ColumnType::kActor);
inline constexpr uint32_t kOpObjCounter = column_spec(0, ColumnType::kUleb);
inline constexpr uint32_t kOpKeyActor = column_spec(1, ColumnType::kActor);
inline constexpr uint32_t kOpKeyCounter = column_spec(1, ColumnType::kDelta);
inline constexpr uint32_t kOpKeyString = column_spec(1, ColumnType::kString);
inline constexpr uint32_t kOpIdActor = column_spec(2, ColumnType::kActor);    // document chunks
inline constexpr uint32_t kOpIdCounter = column_spec(2, ColumnType::kDelta);  // document chunks
inline constexpr uint32_t kOpInsert = column_spec(3, ColumnType::kBoolean);
inline constexpr uint32_t kOpAction = column_spec(4, ColumnType::kUleb);
inline constexpr uint32_t kOpValueMeta = column_spec(5, ColumnType::kValueMeta);
inline constexpr uint32_t kOpValueRaw = column_spec(5, ColumnType::kValue);
inline constexpr uint32_t kOpPredCount = column_spec(7, ColumnType::kGroup);    // change chunks
inline constexpr uint32_t kOpPredActor = column_spec(7, ColumnType::kActor);    // change chunks
inline constexpr uint32_t kOpPredCounter = column_spec(7, ColumnType::kDelta);  // change chunks
inline constexpr uint32_t kOpSuccCount = column_spec(8, ColumnType::kGroup);    // document chunks
inline constexpr uint32_t kOpSuccActor = column_spec(8, ColumnType::kActor);    // document chunks
inline constexpr uint32_t kOpSuccCounter = column_spec(8, ColumnType::kDelta);  // document chunks
inline constexpr uint32_t kOpExpand = column_spec(9, ColumnType::kBoolean);
inline constexpr uint32_t kOpMarkName = column_spec(10, ColumnType::kString);
// Bundle chunks (bundle.h) hold object counters as a delta column, and op id counters
// either in kOpIdCounter or as the order column below.
inline constexpr uint32_t kBundleOpObjCounter = column_spec(0, ColumnType::kDelta);
inline constexpr uint32_t kBundleOpIdOrder = column_spec(11, ColumnType::kDelta);

}  // namespace gm::automerge
