// The ephemeral relay (group_repo.h): a peer's own ephemeral messages go at once to
// the document's other peers with room for them. No job: they reveal no change.
#include "repo/group_repo.h"

namespace gm::repo {

void GroupRepo::on_ephemeral(Connection& c, EphemeralMessage& m) {
  // Only a peer's own messages are relayed. Clients forward the ephemeral messages they
  // get to their other peers, us included (§3.4): relaying those back would make one
  // message circle forever, and would let anyone in the group speak as anyone. A star
  // needs nothing more: the server is every client's hub.
  if (m.sender_id != c.peer_id) return;
  // A read-only grant reads the group; it does not speak to the group's apps (presence,
  // cursors and the like would reach them from a socket they never let in).
  if (c.read_only) return;
  // Each (session, count) once: the highest count of the peer's last few sessions (a
  // repo has one session id for its life; ids are at most 1 KiB).
  constexpr size_t kSessionsKept = 8;
  auto seen = c.ephemeral_counts.find(m.session_id);
  if (seen != c.ephemeral_counts.end() && seen->second >= m.count) return;
  if (seen == c.ephemeral_counts.end() && c.ephemeral_counts.size() >= kSessionsKept) c.ephemeral_counts.clear();
  c.ephemeral_counts[m.session_id] = m.count;
  auto d = slots_.find(m.document_id);
  if (d == slots_.end()) return;
  d->second.last_used = Clock::now();
  // One copy of the payload for every target's frame.
  auto data = std::make_shared<const Bytes>(std::move(m.data));
  for (const auto& [peer_id, conn] : d->second.watchers) {
    if (peer_id == c.peer_id) continue;
    Connection* other = find_peer(peer_id);
    if (!other || other->id != conn) continue;
    m.target_id = peer_id;
    Frame frame = encode_ephemeral(m, data);
    // Droppable, and it reveals no change: sent at once, to sockets with room only.
    if (other->peer->has_room(frame.size())) {
      other->peer->send_shared(std::move(frame));
    } else {
      ++stats_.ephemeral_dropped;
      log_limit("ephemeral", "an ephemeral message was not relayed to conn " + std::to_string(other->id) +
                                 ": its outgoing queue, or all queues together, are filling up");
    }
  }
}

}  // namespace gm::repo
