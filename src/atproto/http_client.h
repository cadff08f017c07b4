// Blocking HTTP client on libcurl, for the few outgoing calls the server and its
// owner's tools make: DID documents from a PLC directory or a did:web host, handles,
// and XRPC calls to the owner's PDS.
//
// Each call blocks until the answer, an error or the timeout. Never call it on the
// server's io thread: run it on a worker thread (DESIGN.md).
//
// URL policy, checked before any connection is made (and again on every redirect):
// https to any host; plain http only to localhost, 127.0.0.1 or [::1] (tests and a
// reference PDS on the same machine); nothing else: no other scheme, no user:password@
// part. A redirect never goes from https to http. A body larger than
// max_response_bytes aborts the transfer: it is never buffered whole.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace gm::atproto {

struct HttpResult {
  long status = 0;           // the final HTTP status (any status is a result, not an error)
  std::string body;          // at most max_response_bytes
  std::string content_type;  // as sent, empty if none
};

struct HttpOptions {
  std::chrono::milliseconds timeout{5000};  // the whole call: connect, redirects, body
  size_t max_response_bytes = 1 << 20;
  bool follow_redirects = false;     // at most kMaxRedirects, each hop under the URL policy
  std::vector<std::string> headers;  // "Name: value" lines
};

inline constexpr int kMaxRedirects = 5;

// Initializes libcurl once for the process. Calls below do it themselves, but main
// calls it before starting threads, as libcurl asks.
void init_http();

// The URL policy above: OK, or an error that says why the URL is refused.
Status check_url(std::string_view url);

Result<HttpResult> http_get(const std::string& url, const HttpOptions& options);
Result<HttpResult> http_post_json(const std::string& url, const std::string& json_body, const HttpOptions& options);
// Any method (upper-case letters), with `body` of `content_type` unless null: the JSON
// API's PATCH and DELETE, for `groundmist-sync mcp`.
Result<HttpResult> http_request(const std::string& method, const std::string& url, const std::string* body,
                                const std::string& content_type, const HttpOptions& options);

}  // namespace gm::atproto
