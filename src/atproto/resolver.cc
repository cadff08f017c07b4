#include "atproto/resolver.h"
#include "util/text.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

namespace gm::atproto {
namespace {

constexpr std::chrono::milliseconds kHandleFetchTimeout{3000};
constexpr size_t kMaxAtprotoDidBytes = 8 * 1024;
constexpr std::chrono::milliseconds kXrpcTimeout{15'000};

// Text from a remote server, fit for an error message on a terminal or in a log.
std::string printable(std::string_view s, size_t max = 200) { return gm::printable(s, max); }

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t start = s.find_first_not_of(ws);
  if (start == std::string_view::npos) return {};
  return s.substr(start, s.find_last_not_of(ws) - start + 1);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool is_did_not_found(const Error& e) { return e.code == ErrorCode::kNotFound; }

DidResolver::DidResolver(std::string plc_url, std::chrono::seconds fresh_for, std::chrono::seconds stale_for,
                         std::chrono::seconds refresh_every)
    : plc_url_(std::move(plc_url)),
      fresh_for_(fresh_for),
      stale_for_(std::max(stale_for, fresh_for)),
      refresh_every_(refresh_every),
      clock_([] { return std::chrono::steady_clock::now(); }) {}

Result<DidDocument> DidResolver::resolve(std::string_view did, bool force_refresh) {
  if (!is_atproto_did(did)) return did_document_url(did, plc_url_).error();  // says why; nothing cached
  const auto now = clock_();
  std::optional<DidDocument> stale_copy;
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(did);
    if (it == cache_.end()) {
      trim_locked(now);
      it = cache_.emplace(std::string(did), Entry{}).first;
    }
    Entry& entry = it->second;
    const bool tried_recently = entry.attempted_at && now - *entry.attempted_at < refresh_every_;
    if (entry.document) {
      const auto age = now - entry.fetched_at;
      if (age < fresh_for_ && !(force_refresh && !tried_recently)) return *entry.document;
      if (age < stale_for_) {
        // A fetch failed (or was forced) moments ago: do not ask again yet.
        if (tried_recently) return *entry.document;
        stale_copy = entry.document;
      }
    }
    // No document, and the last fetch failed moments ago: the same answer, without
    // asking again (a stream of forged tokens must not turn into a stream of fetches).
    if (!entry.document && entry.last_error && entry.attempted_at &&
        now - *entry.attempted_at < std::min<std::chrono::steady_clock::duration>(refresh_every_, kRetryFailureAfter)) {
      return *entry.last_error;
    }
    entry.attempted_at = now;
  }

  Result<DidDocument> fetched = fetch(std::string(did));

  std::lock_guard lock(mu_);
  auto it = cache_.find(did);
  if (fetched.ok()) {
    if (it != cache_.end()) {
      it->second.document = *fetched;
      it->second.fetched_at = now;
      it->second.last_error.reset();
    }
    return fetched;
  }
  if (it != cache_.end()) it->second.last_error = fetched.error();
  if (is_did_not_found(fetched.error())) {
    if (it != cache_.end()) it->second.document.reset();
    return fetched;
  }
  if (stale_copy) {
    spdlog::warn(
        "{}; using the DID document cached {} s ago", fetched.error().message,
        std::chrono::duration_cast<std::chrono::seconds>(now - (it != cache_.end() ? it->second.fetched_at : now))
            .count());
    return *stale_copy;
  }
  return fetched;
}

// Called with mu_ held, before adding an entry.
void DidResolver::trim_locked(std::chrono::steady_clock::time_point now) {
  if (cache_.size() < kMaxEntries) return;
  std::erase_if(cache_, [&](const auto& kv) {
    const Entry& e = kv.second;
    const bool servable = e.document && now - e.fetched_at < stale_for_;
    const bool rate_limited = e.attempted_at && now - *e.attempted_at < refresh_every_;
    return !servable && !rate_limited;
  });
  while (cache_.size() >= kMaxEntries) {
    auto oldest = std::min_element(cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
      return a.second.fetched_at < b.second.fetched_at;
    });
    cache_.erase(oldest);
  }
}

Result<DidDocument> DidResolver::fetch(const std::string& did) const {
  GM_ASSIGN_OR_RETURN(std::string url, did_document_url(did, plc_url_));
  HttpOptions options;
  options.timeout = kDidFetchTimeout;
  options.max_response_bytes = kMaxDidDocumentBytes;
  options.follow_redirects = false;  // spec/atproto.md §3: redirects are errors for DID documents
  options.headers.push_back("Accept: application/did+ld+json, application/json");
  auto answer = http_get(url, options);
  if (!answer.ok()) return error("could not resolve " + did + ": " + answer.error().message);
  if (answer->status == 404 || answer->status == 410) {
    return error(ErrorCode::kNotFound, std::string(kDidNotFound) + ": " + did + " (" + url + " answered HTTP " +
                 std::to_string(answer->status) + ")");
  }
  if (answer->status != 200) {
    return error("could not resolve " + did + ": " + url + " answered HTTP " + std::to_string(answer->status) +
                 (answer->body.empty() ? "" : ": " + printable(answer->body)));
  }
  return parse_did_document(answer->body, did);
}

bool is_handle_syntax(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  size_t start = 0;
  size_t labels = 0;
  std::string_view last;
  while (start <= h.size()) {
    size_t dot = h.find('.', start);
    std::string_view label = h.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    ++labels;
    last = label;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return labels >= 2 && !is_digit(last.front());
}

Result<std::string> fetch_atproto_did(const std::string& url) {
  HttpOptions options;
  options.timeout = kHandleFetchTimeout;
  options.max_response_bytes = kMaxAtprotoDidBytes;
  options.follow_redirects = true;  // allowed for handles (specs/handle)
  auto answer = http_get(url, options);
  if (!answer.ok()) return answer.error();
  if (answer->status != 200) return error(url + " answered HTTP " + std::to_string(answer->status));
  std::string_view did = trim(answer->body);
  if (!is_atproto_did(did)) return error(url + " does not hold a DID (it has \"" + printable(did, 80) + "\")");
  return std::string(did);
}

Result<std::string> resolve_handle_https(std::string_view handle) {
  std::string lowered(handle);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!is_handle_syntax(lowered)) {
    return error("\"" + printable(handle, 100) + "\" is not a handle (a domain name such as alice.example.com)");
  }
  auto did = fetch_atproto_did("https://" + lowered + "/.well-known/atproto-did");
  if (!did.ok()) return error("could not resolve the handle " + lowered + ": " + did.error().message);
  return did;
}

namespace {

bool is_nsid_chars(std::string_view nsid) {
  return !nsid.empty() &&
         std::all_of(nsid.begin(), nsid.end(), [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '-'; });
}

Result<std::string> xrpc_url(std::string_view base_url, std::string_view nsid) {
  if (!is_nsid_chars(nsid)) return error("\"" + printable(nsid, 100) + "\" is not an XRPC method name");
  std::string base(base_url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/xrpc/" + std::string(nsid);
}

HttpOptions xrpc_options(std::string_view bearer) {
  HttpOptions options;
  options.timeout = kXrpcTimeout;
  options.headers.push_back("Accept: application/json");
  if (!bearer.empty()) options.headers.push_back("Authorization: Bearer " + std::string(bearer));
  return options;
}

Result<nlohmann::json> xrpc_answer(const std::string& what, const Result<HttpResult>& answer, XrpcFailure* failure) {
  if (failure) *failure = XrpcFailure{};
  if (!answer.ok()) return context(what, answer.error());
  auto body = nlohmann::json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
  if (answer->status >= 200 && answer->status < 300) {
    if (answer->body.empty()) return nlohmann::json::object();
    if (body.is_discarded()) return error(what + ": the answer is not JSON: " + printable(answer->body));
    return body;
  }
  XrpcFailure f;
  f.status = answer->status;
  if (!body.is_discarded() && body.is_object()) {
    if (auto e = body.find("error"); e != body.end() && e->is_string()) f.error = printable(e->get<std::string>());
    if (auto m = body.find("message"); m != body.end() && m->is_string()) {
      f.message = printable(m->get<std::string>(), 500);
    }
  }
  if (failure) *failure = f;
  std::string message = what + ": HTTP " + std::to_string(f.status);
  if (!f.error.empty()) message += " " + f.error;
  if (!f.message.empty()) message += ": " + f.message;
  if (f.error.empty() && f.message.empty() && !answer->body.empty()) message += ": " + printable(answer->body);
  return error(message);
}

}  // namespace

Result<nlohmann::json> xrpc_query(std::string_view base_url, std::string_view nsid, const XrpcParams& params,
                                  std::string_view bearer, XrpcFailure* failure) {
  GM_ASSIGN_OR_RETURN(std::string url, xrpc_url(base_url, nsid));
  char sep = '?';
  for (const auto& [name, value] : params) {
    url += sep + percent_encode(name) + "=" + percent_encode(value);
    sep = '&';
  }
  return xrpc_answer(std::string(nsid), http_get(url, xrpc_options(bearer)), failure);
}

Result<nlohmann::json> xrpc_procedure(std::string_view base_url, std::string_view nsid, const nlohmann::json& input,
                                      std::string_view bearer, XrpcFailure* failure) {
  GM_ASSIGN_OR_RETURN(std::string url, xrpc_url(base_url, nsid));
  return xrpc_answer(std::string(nsid), http_post_json(url, input.dump(), xrpc_options(bearer)), failure);
}

}  // namespace gm::atproto
