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
// max_response_bytes aborts the transfer: it is never buffered whole; so does a header
// section of more than kMaxResponseHeaders lines or kMaxResponseHeaderBytes bytes.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.h"

namespace gm::atproto {

struct HttpResult {
  long status = 0;           // the final HTTP status (any status is a result, not an error)
  std::string body;          // at most max_response_bytes
  std::string content_type;  // as sent, empty if none
  // The final response's headers, names lower-cased ("dpop-nonce"); a repeated header's
  // values joined with ", " (RFC 9110 §5.3).
  std::map<std::string, std::string, std::less<>> headers;
};

struct HttpOptions {
  std::chrono::milliseconds timeout{5000};  // the whole call: connect, redirects, body
  size_t max_response_bytes = 1 << 20;
  bool follow_redirects = false;     // at most kMaxRedirects, each hop under the URL policy
  std::vector<std::string> headers;  // "Name: value" lines
  // A PEM file of certificates to trust in place of the system's bundle (`doctor`
  // checking a development host that serves its own certificate); empty: the system's.
  std::string ca_file;
};

inline constexpr int kMaxRedirects = 5;
inline constexpr size_t kMaxResponseHeaders = 100;
inline constexpr size_t kMaxResponseHeaderBytes = 64 * 1024;

// Initializes libcurl once for the process. Calls below do it themselves, but main
// calls it before starting threads, as libcurl asks.
void init_http();

// The URL policy above: OK, or an error that says why the URL is refused.
Status check_url(std::string_view url);
// Whether `url` is allowed and names localhost, 127.0.0.1 or [::1].
bool is_loopback_url(std::string_view url);

Result<HttpResult> http_get(const std::string& url, const HttpOptions& options);
Result<HttpResult> http_post_json(const std::string& url, const std::string& json_body, const HttpOptions& options);
// POST of `fields` as application/x-www-form-urlencoded (what OAuth endpoints take).
using FormFields = std::vector<std::pair<std::string, std::string>>;
Result<HttpResult> http_post_form(const std::string& url, const FormFields& fields, const HttpOptions& options);

// Percent-encoding of everything but RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~):
// safe in a query value, a form field and a path segment.
std::string percent_encode(std::string_view s);
// "a=1&b=x%20y": each name and value percent-encoded.
std::string form_encode(const FormFields& fields);
// Any method (upper-case letters), with `body` of `content_type` unless null: the JSON
// API's PATCH and DELETE, for `groundmist-sync mcp`.
Result<HttpResult> http_request(const std::string& method, const std::string& url, const std::string* body,
                                const std::string& content_type, const HttpOptions& options);

}  // namespace gm::atproto
