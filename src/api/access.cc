#include "api/access.h"

namespace gm::api {

Access access_for(const auth::SessionClaims& claims) { return Access{claims.group}; }

std::string writer_subject(const auth::SessionClaims& claims) {
  if (claims.grant_id && !claims.grant_id->empty()) return "grant:" + *claims.grant_id;
  return "token:" + claims.token_id;
}

}  // namespace gm::api
