// Who may read and write which lexicon group through the JSON API: the one decision,
// made here, from a verified session token's claims.
//
// Today a token opens its own group (`grp`), for reading and writing, as it opens that
// group's documents over the WebSocket. Grants (issue 14: per-NSID scopes in the
// token) plug in here and nowhere else: access_for() reads them from the claims, and
// every route asks can_read / can_write.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "auth/session_token.h"
#include "util/bytes.h"

namespace gm::api {

struct Access {
  std::string own_group;  // where a token's new documents go

  // The groups this token may read, its own first (a document id is looked for in
  // them in this order).
  std::vector<std::string> readable_groups() const {
    return own_group.empty() ? std::vector<std::string>{} : std::vector<std::string>{own_group};
  }
  bool can_read(std::string_view group) const { return !own_group.empty() && group == own_group; }
  bool can_write(std::string_view group) const { return !own_group.empty() && group == own_group; }
};

Access access_for(const auth::SessionClaims& claims);

// Who the API writes as for these claims, as a stable name: the grant when the token
// has one, else the token itself (auth::keyed_id turns it into the actor id).
std::string writer_subject(const auth::SessionClaims& claims);

}  // namespace gm::api
