// Resolving identities over the network (spec/atproto.md §3, §4): DIDs to DID documents
// with a cache, handles to DIDs over HTTPS, and the XRPC calls the owner's tools make
// to a PDS. Everything here blocks on HTTP (atproto/http_client.h): call it from worker
// threads, never from the server's io thread.
//
// DidResolver's cache, per DID:
//   fetched less than fresh_for ago       served from the cache
//   older, and the fetch fails            the cached copy is served (with a warning in the
//                                         log) until stale_for after it was fetched
//   the DID is not found (404)            an error, and the cached copy is dropped: a
//                                         tombstoned DID must stop working
// Nothing cached and the fetch fails: that error is the answer for kRetryFailureAfter
// (or refresh_every, if shorter) before the next fetch.
// force_refresh (a signature failed: the key may have been rotated) skips the cache, but
// at most once per refresh_every per DID, so that a stream of forged tokens cannot make
// the server hammer the PLC directory; between such refreshes the cache answers.
// DID documents are fetched without following redirects (as the reference resolver
// does), within kDidFetchTimeout and kMaxDidDocumentBytes.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "atproto/did.h"
#include "atproto/http_client.h"
#include "util/result.h"

namespace gm::atproto {

inline constexpr std::chrono::milliseconds kDidFetchTimeout{4000};
// With nothing cached, a failed fetch is answered again for this long before the next try.
inline constexpr std::chrono::seconds kRetryFailureAfter{5};

// The first words of the error resolve() returns when the directory (or did:web host)
// says the DID does not exist, as opposed to every other failure.
inline constexpr std::string_view kDidNotFound = "DID not found";
bool is_did_not_found(const Error& e);

class DidResolver {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  explicit DidResolver(std::string plc_url, std::chrono::seconds fresh_for = std::chrono::minutes(10),
                       std::chrono::seconds stale_for = std::chrono::hours(24),
                       std::chrono::seconds refresh_every = std::chrono::seconds(30));

  Result<DidDocument> resolve(std::string_view did, bool force_refresh = false);

  // Tests move time by hand.
  void set_clock_for_testing(Clock clock) { clock_ = std::move(clock); }

 private:
  struct Entry {
    std::optional<DidDocument> document;
    std::chrono::steady_clock::time_point fetched_at{};
    std::optional<std::chrono::steady_clock::time_point> attempted_at;  // last fetch started
    std::optional<Error> last_error;  // of the last fetch, if it failed
  };
  // Past this many DIDs, entries too old to serve are dropped, then the oldest.
  static constexpr size_t kMaxEntries = 1024;

  Result<DidDocument> fetch(const std::string& did) const;
  void trim_locked(std::chrono::steady_clock::time_point now);

  const std::string plc_url_;
  const std::chrono::seconds fresh_for_;
  const std::chrono::seconds stale_for_;
  const std::chrono::seconds refresh_every_;
  Clock clock_;
  std::mutex mu_;  // guards cache_; never held during a fetch
  std::map<std::string, Entry, std::less<>> cache_;
};

// Handle → DID by HTTPS: GET https://<handle>/.well-known/atproto-did, redirects allowed,
// the body trimmed must be a DID. (The DNS TXT method, _atproto.<handle>, is not tried:
// a handle that has only that fails here; resolve it with a PDS's
// com.atproto.identity.resolveHandle instead.)
Result<std::string> resolve_handle_https(std::string_view handle);
// The same from a given URL (tests serve it on loopback).
Result<std::string> fetch_atproto_did(const std::string& url);

// atproto handle syntax: a hostname of two labels or more, the last not starting with a
// digit (specs/handle).
bool is_handle_syntax(std::string_view handle);

// XRPC (specs/xrpc): GET <base>/xrpc/<nsid>?<params> and POST <base>/xrpc/<nsid> with a
// JSON body; `bearer` (if not empty) goes in "Authorization: Bearer ...". The answer's
// JSON, or an error that names the call, the HTTP status and the body's
// {"error", "message"}; `failure` (if given) gets that error name (empty when the call
// did not get an XRPC answer at all: network, not JSON).
using XrpcParams = std::vector<std::pair<std::string, std::string>>;
struct XrpcFailure {
  long status = 0;
  std::string error;  // e.g. "RecordNotFound", "AuthenticationRequired"
  std::string message;
};
Result<nlohmann::json> xrpc_query(std::string_view base_url, std::string_view nsid, const XrpcParams& params,
                                  std::string_view bearer = {}, XrpcFailure* failure = nullptr);
Result<nlohmann::json> xrpc_procedure(std::string_view base_url, std::string_view nsid, const nlohmann::json& input,
                                      std::string_view bearer = {}, XrpcFailure* failure = nullptr);

}  // namespace gm::atproto
