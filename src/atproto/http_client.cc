#include "atproto/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

#include "util/text.h"

namespace gm::atproto {
namespace {

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && ascii_lower(s.substr(0, prefix.size())) == prefix;
}

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

// One part of a parsed URL; empty if the URL has none.
std::string url_part(CURLU* u, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(u, part, &value, 0) != CURLUE_OK || value == nullptr) return {};
  std::string out(value);
  curl_free(value);
  return out;
}

// A URL that passed the policy, parsed once: libcurl is handed this very parse
// (CURLOPT_CURLU), so what was checked is what gets fetched.
struct CheckedUrl {
  UrlHandle handle;
  std::string scheme;  // "http" or "https"
  std::string origin;  // scheme://host:port, to tell whether a redirect leaves the host
  bool loopback = false;
};

Result<CheckedUrl> parse_url(std::string_view url) {
  const std::string shown(url.substr(0, 200));
  if (url.find_first_of(std::string_view("\0 \t\r\n", 5)) != std::string_view::npos) {
    return error("URL \"" + shown + "\" contains spaces or control characters");
  }
  const bool https = starts_with_nocase(url, "https://");
  if (!https && !starts_with_nocase(url, "http://")) {
    const size_t colon = url.find(':');
    if (colon == std::string_view::npos || url.substr(0, colon).find('/') != std::string_view::npos) {
      return error("URL \"" + shown + "\" has no scheme: write https://...");
    }
    return error("URL \"" + shown + "\": only https:// URLs are allowed (http:// only to localhost), not " +
                 std::string(url.substr(0, colon)) + ":");
  }
  UrlHandle handle(curl_url());
  if (!handle) return error("out of memory parsing a URL");
  if (CURLUcode rc = curl_url_set(handle.get(), CURLUPART_URL, std::string(url).c_str(), 0); rc != CURLUE_OK) {
    return error("URL \"" + shown + "\" is not valid: " + curl_url_strerror(rc));
  }
  if (!url_part(handle.get(), CURLUPART_USER).empty() || !url_part(handle.get(), CURLUPART_PASSWORD).empty()) {
    return error("URL \"" + shown + "\" has a user:password@ part, which is not allowed");
  }
  const std::string host = ascii_lower(url_part(handle.get(), CURLUPART_HOST));
  if (host.empty()) return error("URL \"" + shown + "\" has no host");
  CheckedUrl checked;
  checked.scheme = https ? "https" : "http";
  checked.loopback = host == "localhost" || host == "127.0.0.1" || host == "[::1]";
  if (!https && !checked.loopback) {
    return error("URL \"" + shown + "\": plain http:// is only allowed to localhost, 127.0.0.1 or [::1]; use https://");
  }
  std::string port = url_part(handle.get(), CURLUPART_PORT);
  if (port.empty()) port = https ? "443" : "80";
  checked.origin = checked.scheme + "://" + host + ":" + port;
  checked.handle = std::move(handle);
  return checked;
}

// Collects the body up to the cap; past it, makes libcurl abort the transfer.
struct BodySink {
  std::string body;
  size_t cap = 0;
  bool over = false;
};

size_t write_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  const size_t len = size * count;
  if (len > sink->cap - sink->body.size()) {
    sink->over = true;
    return 0;  // anything but len aborts with CURLE_WRITE_ERROR
  }
  sink->body.append(data, len);
  return len;
}

// Collects the response's header lines. libcurl calls it for every response of the
// transfer (a "100 Continue" before the real one): a status line starts afresh.
constexpr size_t kMaxResponses = 4;  // status lines in one exchange (interim 1xx answers)

struct HeaderSink {
  std::map<std::string, std::string, std::less<>> headers;
  size_t responses = 0;
  size_t lines = 0;
  size_t bytes = 0;
  bool over = false;
};

size_t write_header(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<HeaderSink*>(user);
  const size_t len = size * count;
  std::string_view line(data, len);
  // A new status line (after a 100 Continue, say) starts the headers again, a few times
  // at most: lines made to look like one cannot reset the bounds without end.
  if (line.starts_with("HTTP/")) {
    if (++sink->responses > kMaxResponses) {
      sink->over = true;
      return 0;
    }
    sink->headers.clear();
    sink->lines = 0;
    sink->bytes = 0;
    return len;
  }
  sink->bytes += len;
  if (++sink->lines > kMaxResponseHeaders || sink->bytes > kMaxResponseHeaderBytes) {
    sink->over = true;
    return 0;  // aborts with CURLE_WRITE_ERROR
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return len;  // the blank line, or not a header
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r' || v.back() == '\n')) v.remove_suffix(1);
    return v;
  };
  std::string name = ascii_lower(trim(line.substr(0, colon)));
  const std::string_view value = trim(line.substr(colon + 1));
  auto [it, inserted] = sink->headers.try_emplace(std::move(name), value);
  if (!inserted) it->second.append(", ").append(value);
  return len;
}

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// `body` (of `content_type`) goes with any method but GET; none: a GET.
Result<HttpResult> perform(const std::string& first_url, std::string method, const std::string* body,
                           const std::string& content_type, const HttpOptions& options) {
  init_http();
  for (const std::string& header : options.headers) {
    if (header.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return error("HTTP header contains a line break or NUL: refused");
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  std::string url = first_url;
  std::vector<std::string> headers = options.headers;
  std::string previous_origin;
  bool started_https = false;

  for (int hop = 0;; ++hop) {
    GM_ASSIGN_OR_RETURN(CheckedUrl checked, parse_url(url));
    if (hop == 0) {
      started_https = checked.scheme == "https";
    } else {
      if (started_https && checked.scheme != "https") {
        return error(method + " " + first_url + ": redirected to " + url + ", from https to http: refused");
      }
      // Credentials were meant for the first host only.
      if (checked.origin != previous_origin) {
        std::erase_if(headers, [](const std::string& h) { return starts_with_nocase(h, "authorization:"); });
      }
    }
    previous_origin = checked.origin;
    const std::string what = method + " " + url;

    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) {
      return error(what + ": no answer within " + std::to_string(options.timeout.count()) + " ms");
    }

    std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
    if (!easy) return error(what + ": could not start libcurl");
    CURL* c = easy.get();
    char errbuf[CURL_ERROR_SIZE] = {0};
    BodySink sink;
    sink.cap = options.max_response_bytes;
    HeaderSink header_sink;

    curl_easy_setopt(c, CURLOPT_CURLU, checked.handle.get());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // worker threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // redirects are followed below, under the policy
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining.count()));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(remaining.count()));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "groundmist-sync");
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_response_bytes));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, write_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &header_sink);
    // A proxy from the environment would resolve "localhost" on its own machine.
    if (checked.loopback) curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (!options.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());

    std::unique_ptr<curl_slist, SlistDeleter> header_list;
    auto add_header = [&header_list](const std::string& h) {
      curl_slist* grown = curl_slist_append(header_list.get(), h.c_str());
      if (grown) {
        (void)header_list.release();
        header_list.reset(grown);
      }
      return grown != nullptr;
    };
    if (body) {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      if (method != "POST") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
      if (!add_header("Content-Type: " + content_type)) return error(what + ": out of memory");
      // No "Expect: 100-continue" round trip for large bodies.
      if (!add_header("Expect:")) return error(what + ": out of memory");
    } else if (method != "GET") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    for (const std::string& h : headers) {
      if (!add_header(h)) return error(what + ": out of memory");
    }
    if (header_list) curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());

    const CURLcode rc = curl_easy_perform(c);
    if (sink.over || rc == CURLE_FILESIZE_EXCEEDED) {
      return limit_error(what + ": response larger than " + std::to_string(options.max_response_bytes) +
                         " bytes: refused");
    }
    if (header_sink.over) {
      return limit_error(what + ": more than " + std::to_string(kMaxResponseHeaders) + " header lines or " +
                         std::to_string(kMaxResponseHeaderBytes) + " bytes of headers: refused");
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return error(what + ": no answer within " + std::to_string(options.timeout.count()) + " ms");
    }
    if (rc != CURLE_OK) {
      return error(what + ": " + (errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc))));
    }

    HttpResult result;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &result.status);
    char* content_type = nullptr;
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK && content_type) {
      result.content_type = content_type;
    }
    result.body = std::move(sink.body);
    result.headers = std::move(header_sink.headers);
    if (!options.follow_redirects || !is_redirect(result.status)) return result;

    char* location = nullptr;
    if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location) != CURLE_OK || location == nullptr) return result;
    if (hop == kMaxRedirects) {
      return error(method + " " + first_url + ": more than " + std::to_string(kMaxRedirects) + " redirects");
    }
    url = location;
    // As browsers do: 303 always, and 301/302 after a POST, continue with a GET.
    if (result.status == 303 || (method == "POST" && (result.status == 301 || result.status == 302))) {
      body = nullptr;
      method = "GET";
    }
  }
}

}  // namespace

void init_http() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool is_loopback_url(std::string_view url) {
  auto checked = parse_url(url);
  return checked.ok() && checked->loopback;
}

Status check_url(std::string_view url) {
  GM_ASSIGN_OR_RETURN(CheckedUrl checked, parse_url(url));
  (void)checked;
  return Status::Ok();
}

Result<HttpResult> http_get(const std::string& url, const HttpOptions& options) {
  return perform(url, "GET", nullptr, "", options);
}

Result<HttpResult> http_post_json(const std::string& url, const std::string& json_body, const HttpOptions& options) {
  return perform(url, "POST", &json_body, "application/json", options);
}

Result<HttpResult> http_post_form(const std::string& url, const FormFields& fields, const HttpOptions& options) {
  const std::string body = form_encode(fields);
  return perform(url, "POST", &body, "application/x-www-form-urlencoded", options);
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string form_encode(const FormFields& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    out += percent_encode(name);
    out.push_back('=');
    out += percent_encode(value);
  }
  return out;
}

Result<HttpResult> http_request(const std::string& method, const std::string& url, const std::string* body,
                                const std::string& content_type, const HttpOptions& options) {
  if (method.empty() || method.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos) {
    return error("HTTP method \"" + method + "\" refused");
  }
  if (content_type.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    return error("Content-Type contains a line break or NUL: refused");
  }
  return perform(url, method, body, content_type, options);
}

}  // namespace gm::atproto
