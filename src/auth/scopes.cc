#include "auth/scopes.h"

#include <algorithm>

#include "storage/group_registry.h"
#include "util/text.h"

namespace gm::auth {

namespace {

// Grant ids are the state store's (letters, digits, '-'): nothing that could split a claim.
bool plausible_grant_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

}  // namespace

Result<Scope> parse_scope(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return error("scope \"" + std::string(text.substr(0, 80)) + "\" is not NSID:read or NSID:write");
  }
  const std::string_view nsid = text.substr(0, colon), access = text.substr(colon + 1);
  Scope scope;
  if (access == "read") {
    scope.access = ScopeAccess::kRead;
  } else if (access == "write") {
    scope.access = ScopeAccess::kWrite;
  } else {
    return error("scope \"" + std::string(text.substr(0, 80)) + "\": the access must be read or write");
  }
  if (Status s = storage::validate_group_name(nsid); !s.ok()) {
    return error("scope \"" + std::string(text.substr(0, 80)) + "\": " + s.error().message);
  }
  scope.nsid = ascii_lower(nsid);
  return scope;
}

std::string to_string(const Scope& scope) {
  return scope.nsid + (scope.access == ScopeAccess::kWrite ? ":write" : ":read");
}

bool covers(const Scope& scope, std::string_view group, ScopeAccess need) {
  if (need == ScopeAccess::kWrite && scope.access != ScopeAccess::kWrite) return false;
  const std::string g = ascii_lower(group);
  return g == scope.nsid || (g.size() > scope.nsid.size() && g.starts_with(scope.nsid) && g[scope.nsid.size()] == '.');
}

bool includes(const Scope& wide, const Scope& narrow) { return covers(wide, narrow.nsid, narrow.access); }

std::string encode_scope_claim(std::span<const Scope> scopes) {
  std::string out;
  for (const Scope& s : scopes) out += (out.empty() ? "" : " ") + to_string(s) + "@" + s.grant_id;
  return out;
}

Result<std::vector<Scope>> decode_scope_claim(std::string_view claim) {
  std::vector<Scope> out;
  for (size_t from = 0, space; from < claim.size(); from = space + 1) {
    space = std::min(claim.find(' ', from), claim.size());
    const std::string_view part = claim.substr(from, space - from);
    if (part.empty()) continue;
    const size_t at = part.rfind('@');
    if (at == std::string_view::npos || !plausible_grant_id(part.substr(at + 1))) {
      return error("scope claim entry without its grant: " + std::string(part.substr(0, 80)));
    }
    GM_ASSIGN_OR_RETURN(Scope scope, parse_scope(part.substr(0, at)));
    scope.grant_id = std::string(part.substr(at + 1));
    out.push_back(std::move(scope));
  }
  return out;
}

bool Access::allows(std::string_view group, ScopeAccess need) const {
  if (!own_group.empty() && ascii_lower(group) == ascii_lower(own_group)) return true;
  if (reads_every_group && need == ScopeAccess::kRead) return true;
  for (const Scope& s : scopes) {
    if (covers(s, group, need)) return true;
  }
  return false;
}

}  // namespace gm::auth
