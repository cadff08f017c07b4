// GET /api/v1/documents/{id}/events: a document's changes as Server-Sent Events
// (docs/api.md, "Watching a document"), so that a tool can follow a document with
// nothing but HTTP.
//
//   event: snapshot               first: the whole JSON view
//   id: <heads, comma-joined>
//   data: {"heads":[...],"doc":{...}}
//
//   event: change                 then one per new set of heads
//   id: <heads, comma-joined>
//   data: {"heads":[...],"patch":[RFC 6902 ops from the previous view to this one]}
//
// How it runs. The repo tells DocumentWatchers::changed() when a document's heads move
// (repo::Repo::add_change_listener: its new changes are durable and on their way to
// its clients). One DocumentCall for all the document's streams then runs on the
// document's slot: on a worker, it builds the JSON view at the new heads once, and one
// patch per view the streams were told last (streams that kept up share one), and the
// io thread only queues the event text, the same for every stream that shares it.
// Changes that land while the call runs are coalesced: one more call follows, at the
// latest heads, so a burst of edits is one event (or a few), never a backlog, and the
// work of a change does not grow with the number of streams.
//
// Bounds: streams server-wide and per token (admit(); ApiLimits::max_event_streams and
// max_event_streams_per_token); each stream's unsent bytes
// (server::EventStream, past them it is cut); a stream ends when its token expires or,
// at a heartbeat or a recheck(), no longer verifies or no longer reads the group
// (revoked).
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "automerge/types.h"
#include "repo/group_repo.h"
#include "repo/repo.h"
#include "server/event_stream.h"
#include "server/http_router.h"

namespace gm::api {

// A document as a stream last told it.
struct WatchedView {
  std::vector<automerge::ChangeHash> heads;  // sorted
  std::shared_ptr<const nlohmann::json> view;
};

// An RFC 6902 patch from `before` to `after`. Unlike nlohmann's json::diff (index by
// index), a list keeps what is equal at its start and end: an insert or a delete in a
// long list is one operation, not a replace of every element after it.
nlohmann::json json_diff(const nlohmann::json& before, const nlohmann::json& after);

// "h1,h2": an event's id.
std::string heads_id(std::span<const automerge::ChangeHash> heads);
// One event: `event: type`, `id: id` (if any) and `data: data` (one line: compact JSON
// has none inside), then a blank line.
std::string sse_event(std::string_view type, std::string_view id, std::string_view data);
// The snapshot event for `heads` and the view's JSON text (a JSON object).
std::string snapshot_event(std::span<const automerge::ChangeHash> heads, std::string_view view_json);

// On a worker: for each of `lasts`, the change event from it to the document as it is,
// and the new state; nothing for one whose heads are still the document's. The view is
// built once for all of them.
struct NextEvent {
  WatchedView state;
  std::string text;
};
Result<std::vector<std::optional<NextEvent>>> next_change_events(repo::GroupRepo::DocumentAccess& doc,
                                                                 std::span<const WatchedView> lasts);

// Every open document event stream. On the io thread only.
class DocumentWatchers : public std::enable_shared_from_this<DocumentWatchers> {
 public:
  DocumentWatchers(repo::Repo& repo, size_t max_streams, size_t max_per_token)
      : repo_(repo), limiter_(max_streams), max_streams_(max_streams), max_per_token_(max_per_token) {}

  // A place for one more stream of token `token_id`, or why not: "token" (it has
  // max_per_token open) or "server" (max_streams are open).
  std::variant<server::RequestLimiter::Ticket, std::string> admit(const std::string& token_id);

  // Starts following document `id` of `group` for `out`, which has been told `first`
  // (or knew it: a reconnect with Last-Event-ID). The stream's check (heartbeats,
  // recheck()) is `still_allowed`.
  void watch(std::string group, std::string id, std::shared_ptr<server::EventStream> out, WatchedView first,
             server::RequestLimiter::Ticket ticket, std::function<bool()> still_allowed);

  // The document's heads moved (the repo's change listener).
  void changed(const std::string& group, const std::string& id);
  // Runs every stream's check now, cutting those no longer allowed (after a revocation).
  void recheck();
  size_t open() const { return limiter_.under_way(); }

 private:
  struct Watch;
  using Key = std::pair<std::string, std::string>;  // group, document id
  // The streams of one document, and the one call bringing them up to date.
  struct Feed {
    std::vector<std::shared_ptr<Watch>> watches;
    bool building = false;  // a call is under way
    bool again = false;     // the heads moved (or a stream came) meanwhile: one more call then
  };
  // Brings the document's streams up to its heads (coalescing, see above).
  void update(const Key& key);
  void forget(const Watch* w);

  repo::Repo& repo_;
  server::RequestLimiter limiter_;
  const size_t max_streams_;
  const size_t max_per_token_;
  std::map<Key, Feed> feeds_;
};

}  // namespace gm::api
