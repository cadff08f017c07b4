// automerge-repo WebSocket messages (spec/automerge.md §3.1–3.3) and their CBOR form.
//
// Usage:
//   gm::Result<gm::repo::Message> m = gm::repo::decode_message(frame);   // one binary frame
//   if (!m.ok()) { log(m.error().message); close(); }
//   if (auto* sync = std::get_if<gm::repo::SyncMessage>(&*m)) ...
//   gm::Bytes frame = gm::repo::encode_message(gm::repo::PeerMessage{...});
//
// Wire form: one CBOR map per binary frame, text-string keys, `type` naming the
// message. What clients (cbor-x, `tagUint8Array: false, useRecords: false`) send and
// this decoder therefore accepts:
//   * map/array/string headers of any width, minimal or not (cbor-x writes maps as
//     `b9 00 05 …`);
//   * `undefined` (0xf7), e.g. `peerMetadata.storageId` of an ephemeral client,
//     treated as an absent field;
//   * integers ≥ 2^32 as float16/32/64 (cbor-x writes `Date.now()` as `fb …`); integer
//     fields accept integral floats up to 2^53;
//   * byte strings (major type 2, untagged) for `data`.
// Rejected, with an Error naming the problem and byte offset: a top-level item that is
// not a map, non-text map keys, duplicate keys, missing or wrong-typed fields of a
// known type, invalid UTF-8 in text, nesting deeper than kMaxNesting, more than
// kMaxItems items (both in cbor_value.h, which reads the CBOR), ids longer than
// kMaxIdBytes, indefinite-length items and tags (cbor-x never sends them here),
// truncated items, and bytes after the map. Unknown fields are ignored (forward
// compatibility); an unknown `type` decodes to UnknownMessage (clients and servers
// drop those). Every `documentId` is checked to be bs58check (document_id.h), so it is
// safe to use as a folder name.
//
// Encoding is minimal CBOR with the fields in the order the JS adapters use; cbor-x
// decodes it (checked with tests/interop/tools/cbor_check.mjs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "util/bytes.h"
#include "util/frame.h"
#include "util/result.h"

namespace gm::repo {

// senderId, targetId, sessionId and storageId: real ones are tens of bytes (the
// prototype's own peer id, "storage-server-<hostname>-<group>", at most ~520).
inline constexpr size_t kMaxIdBytes = 1024;

// `peerMetadata`: both fields optional on the wire; `storageId: undefined` = absent.
struct PeerMetadata {
  std::optional<std::string> storage_id;
  std::optional<bool> is_ephemeral;
  bool operator==(const PeerMetadata&) const = default;
};

// C→S, first message on a socket. supportedProtocolVersions absent = the JS server
// assumes "1".
struct JoinMessage {
  std::string sender_id;
  PeerMetadata peer_metadata;
  std::optional<std::vector<std::string>> supported_protocol_versions;
  bool operator==(const JoinMessage&) const = default;
};

// S→C reply to join.
struct PeerMessage {
  std::string sender_id;
  std::string target_id;
  PeerMetadata peer_metadata;
  std::string selected_protocol_version = "1";
  bool operator==(const PeerMessage&) const = default;
};

// Either direction; the sender closes the socket afterwards.
struct ErrorMessage {
  std::string sender_id;
  std::string target_id;
  std::string message;
  bool operator==(const ErrorMessage&) const = default;
};

// `data` is an automerge sync message (§2.1).
struct SyncMessage {
  std::string sender_id;
  std::string target_id;
  std::string document_id;
  Bytes data;
  bool operator==(const SyncMessage&) const = default;
};

// Same fields as sync: the sender lacks the document and wants doc-unavailable if the
// receiver lacks it too.
struct RequestMessage {
  std::string sender_id;
  std::string target_id;
  std::string document_id;
  Bytes data;
  bool operator==(const RequestMessage&) const = default;
};

struct DocUnavailableMessage {
  std::string sender_id;
  std::string target_id;
  std::string document_id;
  bool operator==(const DocUnavailableMessage&) const = default;
};

// Relayed unchanged except targetId; (sender_id, session_id, count) de-duplicates.
struct EphemeralMessage {
  std::string sender_id;
  std::string target_id;
  std::string document_id;
  std::string session_id;
  uint64_t count = 0;
  Bytes data;  // CBOR-encoded application payload, opaque here
  bool operator==(const EphemeralMessage&) const = default;
};

struct RemoteSubscriptionChangeMessage {
  std::string sender_id;
  std::string target_id;
  std::vector<std::string> add;     // absent on the wire = empty
  std::vector<std::string> remove;  // absent on the wire = empty
  bool operator==(const RemoteSubscriptionChangeMessage&) const = default;
};

struct RemoteHeads {
  std::string storage_id;
  std::vector<std::string> heads;  // bs58check-encoded change hashes (not checked)
  double timestamp = 0;            // milliseconds
  bool operator==(const RemoteHeads&) const = default;
};

struct RemoteHeadsChangedMessage {
  std::string sender_id;
  std::string target_id;
  std::string document_id;
  std::vector<RemoteHeads> new_heads;  // in wire order
  bool operator==(const RemoteHeadsChangedMessage&) const = default;
};

// Sent by 1.2.1 clients on disconnect (§3.4a); no targetId.
struct LeaveMessage {
  std::string sender_id;
  bool operator==(const LeaveMessage&) const = default;
};

// Any other `type`; kept so the caller can log it before dropping it.
struct UnknownMessage {
  std::string type;
  std::optional<std::string> sender_id;
  bool operator==(const UnknownMessage&) const = default;
};

using Message = std::variant<JoinMessage, PeerMessage, ErrorMessage, SyncMessage, RequestMessage,
                             DocUnavailableMessage, EphemeralMessage, RemoteSubscriptionChangeMessage,
                             RemoteHeadsChangedMessage, LeaveMessage, UnknownMessage>;

// Decodes one frame (exactly one CBOR item).
Result<Message> decode_message(ByteView frame);

// Encodes one message as a CBOR map. UnknownMessage encodes as {type, senderId?}.
Bytes encode_message(const Message& message);
// The ephemeral message `m` with `data` as its data (m.data is not used), sharing it:
// one payload for every target of a relay.
Frame encode_ephemeral(const EphemeralMessage& m, std::shared_ptr<const Bytes> data);

// The `type` string of a message ("join", "sync", …; UnknownMessage: its own type).
std::string_view message_type(const Message& message);

}  // namespace gm::repo
