#include "automerge/change.h"

namespace gm::automerge {

Result<ChangeHeader> decode_change_header(ByteView body, ByteView* rest) {
  Reader r(body);
  ChangeHeader h;
  GM_ASSIGN_OR_RETURN(size_t ndeps, r.count("dependency count", 32));
  h.deps.reserve(ndeps);
  for (size_t i = 0; i < ndeps; ++i) {
    GM_ASSIGN_OR_RETURN(ByteView dep, r.bytes(32, "dependency hash"));
    h.deps.push_back(ChangeHash::from_bytes(dep));
    if (i > 0 && !(h.deps[i - 1] < h.deps[i])) return r.fail("dependencies not sorted");
  }
  GM_ASSIGN_OR_RETURN(ByteView actor, r.length_prefixed("actor id"));
  h.actor.assign(actor.begin(), actor.end());
  GM_ASSIGN_OR_RETURN(h.seq, r.uleb("seq"));
  GM_ASSIGN_OR_RETURN(h.start_op, r.uleb("start op"));
  GM_ASSIGN_OR_RETURN(h.time, r.sleb("time"));
  GM_ASSIGN_OR_RETURN(ByteView message, r.length_prefixed("message"));
  h.message.assign(as_string(message));
  GM_ASSIGN_OR_RETURN(size_t nactors, r.count("other actor count", 1));
  h.other_actors.reserve(nactors);
  for (size_t i = 0; i < nactors; ++i) {
    GM_ASSIGN_OR_RETURN(ByteView a, r.length_prefixed("other actor id"));
    h.other_actors.emplace_back(a.begin(), a.end());
  }
  if (h.seq == 0) return error("change has seq 0 (the first change of an actor has seq 1)");
  if (h.start_op == 0) return error("change has startOp 0 (op counters start at 1)");
  if (rest) *rest = r.rest();
  return h;
}

}  // namespace gm::automerge
