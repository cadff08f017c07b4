// Who may read and write which lexicon group through the JSON API: the one decision,
// made here, from a verified session token's claims.
//
// A token opens its own group (`grp`), for reading and writing, as it opens that
// group's documents over the WebSocket, and the groups its scopes reach (docs/grants.md):
// access_for() reads them from the claims' `scp`, which the token check has already cut
// down to the scopes whose grant stands (cli/token_command.h), and every route asks
// can_read / can_write.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "auth/scopes.h"
#include "auth/session_token.h"
#include "util/bytes.h"

namespace gm::api {

struct Access {
  std::string own_group;  // where a token's new documents go
  auth::Access reach;     // its own group, and the scopes whose grant stands

  // The groups among `known` this token may read, its own first (a document id is
  // looked for in them in this order), the others sorted.
  std::vector<std::string> readable_groups(const std::vector<std::string>& known) const;
  bool can_read(std::string_view group) const { return reach.can_read(group); }
  bool can_write(std::string_view group) const { return reach.can_write(group); }
};

Access access_for(const auth::SessionClaims& claims);

// Who the API writes as for these claims, as a stable name: the grant when the token
// has one, else the token itself (auth::keyed_id turns it into the actor id).
std::string writer_subject(const auth::SessionClaims& claims);

}  // namespace gm::api
