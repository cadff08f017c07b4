// Encoding a document chunk (spec/automerge.md §1.9): the column writers, and a
// DecodedDocument back to bytes.
#include <algorithm>

#include "automerge/doc_chunk.h"
#include "automerge/doc_chunk_internal.h"
#include "automerge/op_columns.h"

namespace gm::automerge {

namespace {

// Appends the known columns and the unknown ones, sorted by spec, compressing
// long ones when asked.
void finish_columns(std::vector<ColumnOut>& cols, const std::vector<DecodedDocument::UnknownColumn>& unknown,
                    bool compress) {
  for (const auto& u : unknown) cols.push_back({u.spec & ~kDeflateBit, u.data});
  std::stable_sort(cols.begin(), cols.end(), [](const ColumnOut& a, const ColumnOut& b) { return a.spec < b.spec; });
  if (!compress) return;
  for (ColumnOut& c : cols) {
    if (c.data.size() >= kDeflateMinColumnSize) {
      c.data = deflate_raw(c.data);
      c.spec |= kDeflateBit;
    }
  }
}

}  // namespace

void ChangeColumnsWriter::append_row(uint32_t actor, uint64_t seq, uint64_t max_op, int64_t time,
                                     const std::string* message, size_t dep_count, ByteView extra) {
  actor_.append_value(actor);
  seq_.append(static_cast<int64_t>(seq));
  max_op_.append(static_cast<int64_t>(max_op));
  time_.append(time);
  if (message) {
    message_.append_value(*message);
  } else {
    message_.append_null();
  }
  deps_count_.append_value(dep_count);
  extra_value_.type = static_cast<uint8_t>(ValueType::kBytes);
  extra_value_.bytes.assign(extra.begin(), extra.end());
  extra_.append(extra_value_);
}

std::vector<ColumnOut> ChangeColumnsWriter::finish(bool compress,
                                                   const std::vector<DecodedDocument::UnknownColumn>& unknown) {
  std::vector<ColumnOut> cols;
  cols.reserve(9 + unknown.size());
  cols.push_back({kChangeActor, actor_.finish()});
  cols.push_back({kChangeSeq, seq_.finish()});
  cols.push_back({kChangeMaxOp, max_op_.finish()});
  cols.push_back({kChangeTime, time_.finish()});
  cols.push_back({kChangeMessage, message_.finish()});
  cols.push_back({kChangeDepsCount, deps_count_.finish()});
  cols.push_back({kChangeDepsIndex, deps_index_.finish()});
  ColumnOut meta{kChangeExtraMeta, {}}, raw{kChangeExtraRaw, {}};
  extra_.finish(meta.data, raw.data);
  cols.push_back(std::move(meta));
  cols.push_back(std::move(raw));
  finish_columns(cols, unknown, compress);
  return cols;
}

void OpColumnsWriter::append(const Op& op) {
  auto actor = [&](uint32_t a) -> uint64_t { return actor_map_.empty() ? a : actor_map_[a]; };
  if (op.obj.is_root()) {
    obj_actor_.append_null();
    obj_counter_.append_null();
  } else {
    obj_actor_.append_value(actor(op.obj.actor));
    obj_counter_.append_value(op.obj.counter);
  }
  if (op.key.is_map()) {
    key_actor_.append_null();
    key_counter_.append(std::nullopt);
    key_string_.append_value(*op.key.map_key);
  } else {
    if (op.key.elem.is_root()) {
      key_actor_.append_null();
    } else {
      key_actor_.append_value(actor(op.key.elem.actor));
    }
    key_counter_.append(static_cast<int64_t>(op.key.elem.counter));
    key_string_.append_null();
  }
  id_actor_.append_value(actor(op.id.actor));
  id_counter_.append(static_cast<int64_t>(op.id.counter));
  insert_.append(op.insert);
  action_.append_value(op.action);
  value_.append(op.value);
  succ_count_.append_value(op.pred.size());
  for (const OpId& s : op.pred) {
    succ_actor_.append_value(actor(s.actor));
    succ_counter_.append(static_cast<int64_t>(s.counter));
  }
  expand_.append(op.expand);
  any_expand_ |= op.expand;
  if (op.mark_name) {
    mark_name_.append_value(*op.mark_name);
  } else {
    mark_name_.append_null();
  }
}

std::vector<ColumnOut> OpColumnsWriter::finish(bool compress,
                                               const std::vector<DecodedDocument::UnknownColumn>& unknown) {
  std::vector<ColumnOut> cols;
  cols.reserve(16 + unknown.size());
  cols.push_back({kOpObjActor, obj_actor_.finish()});
  cols.push_back({kOpObjCounter, obj_counter_.finish()});
  cols.push_back({kOpKeyActor, key_actor_.finish()});
  cols.push_back({kOpKeyCounter, key_counter_.finish()});
  cols.push_back({kOpKeyString, key_string_.finish()});
  cols.push_back({kOpIdActor, id_actor_.finish()});
  cols.push_back({kOpIdCounter, id_counter_.finish()});
  cols.push_back({kOpInsert, insert_.finish()});
  cols.push_back({kOpAction, action_.finish()});
  ColumnOut meta{kOpValueMeta, {}}, raw{kOpValueRaw, {}};
  value_.finish(meta.data, raw.data);
  cols.push_back(std::move(meta));
  cols.push_back(std::move(raw));
  cols.push_back({kOpSuccCount, succ_count_.finish()});
  cols.push_back({kOpSuccActor, succ_actor_.finish()});
  cols.push_back({kOpSuccCounter, succ_counter_.finish()});
  // The expand column is omitted unless some op sets it.
  cols.push_back({kOpExpand, any_expand_ ? expand_.finish() : Bytes{}});
  cols.push_back({kOpMarkName, mark_name_.finish()});
  finish_columns(cols, unknown, compress);
  return cols;
}

Bytes encode_document_body(std::span<const ActorId> actors, std::span<const ChangeHash> heads,
                           const std::vector<ColumnOut>& change_columns, const std::vector<ColumnOut>& op_columns,
                           std::span<const uint64_t> heads_index) {
  Bytes out;
  size_t data_size = 0;
  for (const auto& c : change_columns) data_size += c.data.size();
  for (const auto& c : op_columns) data_size += c.data.size();
  out.reserve(data_size + 64 + 33 * heads.size() + 20 * actors.size());
  put_uleb(out, actors.size());
  for (const ActorId& a : actors) {
    put_uleb(out, a.size());
    append(out, a);
  }
  put_uleb(out, heads.size());
  for (const ChangeHash& h : heads) append(out, h.bytes);
  write_columns_metadata(change_columns, out);
  write_columns_metadata(op_columns, out);
  write_columns_data(change_columns, out);
  write_columns_data(op_columns, out);
  for (uint64_t i : heads_index) put_uleb(out, i);
  return out;
}

Bytes encode_document_body(const DecodedDocument& doc, bool compress) {
  ChangeColumnsWriter changes;
  for (const auto& c : doc.changes) {
    changes.append(c.actor, c.seq, c.max_op, c.time, doc.message(c), doc.deps(c), doc.extra(c));
  }
  OpColumnsWriter ops;
  for (size_t i = 0; i < doc.ops.size(); ++i) ops.append(doc.op(i));
  return encode_document_body(doc.actors, doc.heads, changes.finish(compress, doc.unknown_change_columns),
                              ops.finish(compress, doc.unknown_op_columns), doc.heads_index);
}

Bytes encode_document(const DecodedDocument& doc, bool compress) {
  return make_chunk(ChunkType::kDocument, encode_document_body(doc, compress));
}

}  // namespace gm::automerge
