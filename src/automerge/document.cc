#include "automerge/document.h"

// Placeholder until the parts below it land; every call reports that.
namespace gm::automerge {

static Error not_ready() { return error("Document is not implemented yet"); }

Result<Document> Document::load(ByteView) { return not_ready(); }
Status Document::apply(ByteView) { return not_ready(); }
std::vector<ChangeHash> Document::heads() const { return {}; }
std::vector<ByteView> Document::changes() const { return {}; }
Bytes Document::save(bool) const { return {}; }
nlohmann::json Document::to_json() const { return nullptr; }
std::optional<Bytes> Document::generate_sync_message(SyncState&) const { return std::nullopt; }
Status Document::receive_sync_message(SyncState&, ByteView) { return not_ready(); }

}  // namespace gm::automerge
