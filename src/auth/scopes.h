// Scopes: what a grant lets its subject reach beyond the group it logged in to (issue 14,
// docs/grants.md).
//
// A scope names an NSID prefix and an access: `xyz.groundmist.notebook:read`. It covers
// the group of that name and every group below it (`xyz.groundmist:write` covers
// `xyz.groundmist.notebook` and `xyz.groundmist.library`), compared without regard to
// letter case as NSID authorities are. Write implies read. The prefix follows the group
// name rules (storage/group_registry.h): at least two segments, so no scope reaches
// every app of a top-level domain by accident.
//
// A session token carries the scopes it was granted in its `scp` claim, each with the
// id of the grant that allows it: "xyz.groundmist.notebook:read@G1 …". The server
// honours a scope only while that grant stands (RevocationState::revoked_grants), so
// revoking a grant narrows every token that used it at once. The token's own group
// (`grp`) is always reachable, read and write, as before grants existed.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace gm::auth {

enum class ScopeAccess { kRead, kWrite };

struct Scope {
  std::string nsid;  // lower case
  ScopeAccess access = ScopeAccess::kRead;
  std::string grant_id;  // the grant allowing it, in a token; empty in a request
  bool operator==(const Scope&) const = default;
};

// "nsid:read" or "nsid:write" (as in requests, the CLI and the database).
Result<Scope> parse_scope(std::string_view text);
std::string to_string(const Scope& scope);
// Whether `scope` reaches `group` with `need`.
bool covers(const Scope& scope, std::string_view group, ScopeAccess need);
// Whether `wide` allows all that `narrow` asks (its prefix and access, whatever grant).
bool includes(const Scope& wide, const Scope& narrow);

// The `scp` claim: each scope as "nsid:access@grant", space-separated. At most this many
// bytes, so that a token stays under kMaxSessionTokenLength (scopes past it are refused).
inline constexpr size_t kMaxScopeClaimBytes = 2048;
std::string encode_scope_claim(std::span<const Scope> scopes);
Result<std::vector<Scope>> decode_scope_claim(std::string_view claim);

// What one token reaches.
struct Access {
  std::string own_group;      // read and write
  std::vector<Scope> scopes;  // those whose grant still stands
  // The owner's console (docs/console.md) reads every group; nothing else does.
  bool reads_every_group = false;
  bool can_read(std::string_view group) const { return allows(group, ScopeAccess::kRead); }
  bool can_write(std::string_view group) const { return allows(group, ScopeAccess::kWrite); }
  bool allows(std::string_view group, ScopeAccess need) const;
};

}  // namespace gm::auth
