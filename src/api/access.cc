#include "api/access.h"

namespace gm::api {

Access access_for(const auth::SessionClaims& claims) {
  Access a;
  a.own_group = claims.group;
  a.reach.own_group = claims.group;
  if (auto scp = claims.extra.find("scp"); scp != claims.extra.end()) {
    // Signed by this server and checked: a claim that does not parse reaches nothing more.
    if (auto scopes = auth::decode_scope_claim(scp->second)) a.reach.scopes = std::move(*scopes);
  }
  return a;
}

std::vector<std::string> Access::readable_groups(const std::vector<std::string>& known) const {
  std::vector<std::string> out;
  if (!own_group.empty()) out.push_back(own_group);
  for (const std::string& g : known) {
    if (g != own_group && can_read(g)) out.push_back(g);
  }
  return out;
}

std::string writer_subject(const auth::SessionClaims& claims) {
  if (claims.grant_id && !claims.grant_id->empty()) return "grant:" + *claims.grant_id;
  return "token:" + claims.token_id;
}

}  // namespace gm::api
