// What the three parts of the document chunk code (doc_chunk.h) share: doc_chunk.cc
// (decoding and its checks), doc_chunk_encode.cc and doc_chunk_expand.cc. Not an API.
#pragma once

#include <string>
#include <vector>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "automerge/doc_chunk.h"

namespace gm::automerge {

// The change columns of a document chunk (§1.9); its op columns are in op_columns.h.
inline constexpr uint32_t kChangeActor = column_spec(0, ColumnType::kActor);
inline constexpr uint32_t kChangeSeq = column_spec(0, ColumnType::kDelta);
inline constexpr uint32_t kChangeMaxOp = column_spec(1, ColumnType::kDelta);
inline constexpr uint32_t kChangeTime = column_spec(2, ColumnType::kDelta);
inline constexpr uint32_t kChangeMessage = column_spec(3, ColumnType::kString);
inline constexpr uint32_t kChangeDepsCount = column_spec(4, ColumnType::kGroup);
inline constexpr uint32_t kChangeDepsIndex = column_spec(4, ColumnType::kDelta);
inline constexpr uint32_t kChangeExtraMeta = column_spec(5, ColumnType::kValueMeta);
inline constexpr uint32_t kChangeExtraRaw = column_spec(5, ColumnType::kValue);

// Reserves a large row vector and asks the kernel to back it with huge pages: the
// rows of a big document fill tens of megabytes once, and first-touch page faults
// (one per 4 KiB page) otherwise cost as much as decoding itself.
template <class T>
void reserve_rows(std::vector<T>& rows, size_t n) {
  rows.reserve(n);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const size_t bytes = rows.capacity() * sizeof(T);
  if (bytes < 2 * kHuge) return;
  uintptr_t begin = (reinterpret_cast<uintptr_t>(rows.data()) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(rows.data()) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}

inline Error row_error(const char* table, size_t row, const std::string& what) {
  return error(std::string("document chunk: ") + table + " row " + std::to_string(row) + ": " + what);
}

}  // namespace gm::automerge
