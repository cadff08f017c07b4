#include "atproto/jwt.h"

#include <cctype>

#include <set>

#include "util/base64url.h"
#include "util/text.h"

namespace gm::atproto {

namespace {

Error malformed(const std::string& why) { return error("malformed JWT: " + why); }

}  // namespace

Result<nlohmann::json> parse_unique_json_object(std::string_view text, std::string_view what) {
  std::set<std::string> names;
  std::string repeated;
  auto note_names = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && repeated.empty()) {
      const std::string& name = parsed.get_ref<const std::string&>();
      if (!names.insert(name).second) repeated = name;
    }
    return true;
  };
  auto j = nlohmann::json::parse(text, note_names, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return error(std::string(what) + " is not a JSON object");
  if (!repeated.empty()) return error(std::string(what) + " repeats the member \"" + repeated.substr(0, 40) + "\"");
  return j;
}

Result<CompactJwt> parse_compact_jwt(std::string_view token) {
  if (token.empty()) return malformed("empty token");
  if (token.size() > kMaxJwtLength) {
    return malformed("longer than " + std::to_string(kMaxJwtLength) + " characters");
  }
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return malformed("need three base64url segments (header.payload.signature)");
  }
  std::string_view header_b64 = token.substr(0, dot1);
  std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view signature_b64 = token.substr(dot2 + 1);
  if (header_b64.empty() || payload_b64.empty()) return malformed("need three base64url segments; one is empty");
  if (signature_b64.empty()) {
    return malformed("need three base64url segments; the signature is empty (unsigned tokens, alg none, are refused)");
  }

  auto header_bytes = base64url_decode(header_b64);
  if (!header_bytes.ok()) return malformed("header is not base64url");
  auto payload_bytes = base64url_decode(payload_b64);
  if (!payload_bytes.ok()) return malformed("payload is not base64url");
  auto signature = base64url_decode(signature_b64);
  if (!signature.ok()) return malformed("signature is not base64url");

  CompactJwt jwt;
  auto header = parse_unique_json_object(as_string(*header_bytes), "header");
  if (!header.ok()) return malformed(header.error().message);
  auto payload = parse_unique_json_object(as_string(*payload_bytes), "payload");
  if (!payload.ok()) return malformed(payload.error().message);
  jwt.signing_input = std::string(token.substr(0, dot2));
  jwt.header = std::move(header).value();
  jwt.payload = std::move(payload).value();
  jwt.signature = std::move(signature).value();
  return jwt;
}

const std::string* string_claim(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return nullptr;
  return &it->get_ref<const std::string&>();
}

std::optional<int64_t> time_claim(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) return std::nullopt;
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(kMaxUnixTime)) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (it->is_number_integer()) {
    int64_t v = it->get<int64_t>();
    if (v < 0 || v > kMaxUnixTime) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

std::string clip_claim(std::string_view s) { return printable(s, 120); }

}  // namespace gm::atproto
