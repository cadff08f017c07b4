#include "atproto/did.h"

#include <algorithm>
#include <cctype>

#include "atproto/jwt.h"

namespace gm::atproto {

namespace {

constexpr std::string_view kPlcPrefix = "did:plc:";
constexpr std::string_view kWebPrefix = "did:web:";

bool is_lower_alpha(char c) { return c >= 'a' && c <= 'z'; }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool iequals(std::string_view a, std::string_view b) { return a.size() == b.size() && to_lower(a) == to_lower(b); }

// DNS hostname syntax: labels of [A-Za-z0-9-], 1–63 characters, not starting or ending
// with '-', at most 253 characters in all.
bool is_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = host.find('.', start);
    std::string_view label = host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!is_alnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool is_local_host(std::string_view host) { return iequals(host, "localhost") || host == "127.0.0.1"; }

bool is_port(std::string_view port) {
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), is_digit)) return false;
  int value = std::stoi(std::string(port));
  return value >= 1 && value <= 65535;
}

// The host[:port] a did:web names, or nullopt if it is not an atproto did:web.
std::optional<std::string> did_web_host(std::string_view did) {
  if (did.substr(0, kWebPrefix.size()) != kWebPrefix) return std::nullopt;
  std::string_view rest = did.substr(kWebPrefix.size());
  std::string_view host = rest;
  std::string_view port;
  size_t pct = rest.find('%');
  if (pct != std::string_view::npos) {
    if (!iequals(rest.substr(pct, 3), "%3A")) return std::nullopt;
    host = rest.substr(0, pct);
    port = rest.substr(pct + 3);
    if (!is_local_host(host) || !is_port(port)) return std::nullopt;
  }
  // A ':' would start a path, which atproto does not allow in did:web.
  if (!is_hostname(host)) return std::nullopt;
  std::string out(host);
  if (!port.empty()) out += ":" + std::string(port);
  return out;
}

// atproto handle syntax (specs/handle): a hostname of at least two labels whose last
// label does not start with a digit.
bool is_handle(std::string_view h) {
  if (!is_hostname(h)) return false;
  size_t dot = h.rfind('.');
  return dot != std::string_view::npos && !is_digit(h[dot + 1]);
}

// "https://host[:port]" with nothing after it but an optional "/"; returned without the slash.
std::optional<std::string> http_origin(std::string_view url) {
  std::string_view rest;
  if (url.substr(0, 8) == "https://") {
    rest = url.substr(8);
  } else if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
  } else {
    return std::nullopt;
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string_view host = rest;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {  // IPv6 literal
    size_t close = rest.find(']');
    if (close == std::string_view::npos || close < 3) return std::nullopt;
    std::string_view inside = rest.substr(1, close - 1);
    for (char c : inside) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return std::nullopt;
    }
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
      if (!is_port(port)) return std::nullopt;
    }
    return std::string(url.substr(0, url.size() - (url.back() == '/' ? 1 : 0)));
  }
  size_t colon = rest.find(':');
  if (colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (!is_port(port)) return std::nullopt;
  }
  if (!is_hostname(host)) return std::nullopt;
  return std::string(url.substr(0, url.size() - (url.back() == '/' ? 1 : 0)));
}

// True if `id` names `fragment` ("#atproto") of `did`, relative or absolute.
bool is_fragment_id(const nlohmann::json& id, std::string_view did, std::string_view fragment) {
  if (!id.is_string()) return false;
  const std::string& s = id.get_ref<const std::string&>();
  if (s == fragment) return true;
  return s.size() == did.size() + fragment.size() && s.compare(0, did.size(), did) == 0 &&
         s.compare(did.size(), std::string::npos, fragment) == 0;
}

Result<PublicKey> read_verification_method(const nlohmann::json& vm, std::string_view did) {
  const std::string* type = string_claim(vm, "type");
  const std::string* controller = string_claim(vm, "controller");
  const std::string* multibase = string_claim(vm, "publicKeyMultibase");
  if (!type) return error("#atproto verification method has no type");
  if (!multibase) return error("#atproto verification method has no publicKeyMultibase string");
  if (*type == "Multikey") {
    if (!controller || *controller != did) return error("#atproto Multikey's controller is not " + std::string(did));
    return parse_multikey(*multibase);
  }
  std::optional<Curve> curve;
  if (*type == "EcdsaSecp256k1VerificationKey2019") curve = Curve::kSecp256k1;
  if (*type == "EcdsaSecp256r1VerificationKey2019") curve = Curve::kP256;
  if (!curve) return error("#atproto verification method has unsupported type \"" + type->substr(0, 80) + "\"");
  // Old documents may omit the controller; one that names somebody else is refused.
  if (vm.contains("controller") && (!controller || *controller != did)) {
    return error("#atproto verification method's controller is not " + std::string(did));
  }
  return parse_legacy_multibase(*curve, *multibase);
}

}  // namespace

bool is_did(std::string_view s) {
  if (s.size() > kMaxDidLength || s.substr(0, 4) != "did:") return false;
  size_t colon = s.find(':', 4);
  if (colon == std::string_view::npos || colon == 4) return false;
  for (size_t i = 4; i < colon; ++i) {
    if (!is_lower_alpha(s[i])) return false;
  }
  std::string_view id = s.substr(colon + 1);
  if (id.empty() || id.back() == ':' || id.back() == '%') return false;
  for (char c : id) {
    if (!is_alnum(c) && c != '.' && c != '_' && c != ':' && c != '%' && c != '-') return false;
  }
  return true;
}

bool is_atproto_did(std::string_view s) {
  if (!is_did(s)) return false;
  if (s.substr(0, kPlcPrefix.size()) == kPlcPrefix) {
    std::string_view id = s.substr(kPlcPrefix.size());
    return id.size() == 24 &&
           std::all_of(id.begin(), id.end(), [](char c) { return is_lower_alpha(c) || (c >= '2' && c <= '7'); });
  }
  return did_web_host(s).has_value();
}

Result<std::string> did_document_url(std::string_view did, std::string_view plc_url) {
  if (!is_atproto_did(did)) {
    return error("\"" + std::string(did.substr(0, 100)) +
                 "\" is not an atproto DID (did:plc:<24 base32 characters> or did:web:<hostname>)");
  }
  if (did.substr(0, kPlcPrefix.size()) == kPlcPrefix) {
    std::string base(plc_url);
    while (!base.empty() && base.back() == '/') base.pop_back();
    if (base.substr(0, 8) != "https://" && base.substr(0, 7) != "http://") {
      return error("PLC directory URL \"" + base + "\" must start with https:// or http://");
    }
    return base + "/" + std::string(did);
  }
  std::string host = *did_web_host(did);
  size_t colon = host.find(':');
  bool local = is_local_host(std::string_view(host).substr(0, colon));
  return std::string(local ? "http://" : "https://") + host + "/.well-known/did.json";
}

Result<DidDocument> parse_did_document(std::string_view json_text, std::string_view expected_did) {
  if (json_text.size() > kMaxDidDocumentBytes) {
    return error("DID document of " + std::string(expected_did) + " is larger than " +
                 std::to_string(kMaxDidDocumentBytes) + " bytes");
  }
  auto j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return error("DID document of " + std::string(expected_did) + " is not a JSON object");
  }
  const std::string* id = string_claim(j, "id");
  if (!id || *id != expected_did) {
    return error("DID document id " + (id ? "\"" + id->substr(0, 100) + "\"" : std::string("(missing)")) +
                 " does not match the DID resolved, " + std::string(expected_did));
  }
  DidDocument doc;
  doc.id = *id;

  auto aka = j.find("alsoKnownAs");
  if (aka != j.end() && aka->is_array()) {
    for (const auto& entry : *aka) {
      if (!entry.is_string()) continue;
      const std::string& s = entry.get_ref<const std::string&>();
      if (s.compare(0, 5, "at://") != 0) continue;
      std::string handle = to_lower(std::string_view(s).substr(5));
      if (is_handle(handle)) doc.handle = std::move(handle);
      break;  // only the first at:// entry counts (specs/did)
    }
  }

  doc.atproto_key_error = "DID document of " + doc.id + " has no #atproto verification method";
  auto methods = j.find("verificationMethod");
  if (methods != j.end() && methods->is_array()) {
    for (const auto& vm : *methods) {
      if (!vm.is_object() || !is_fragment_id(vm.value("id", nlohmann::json()), doc.id, "#atproto")) continue;
      auto key = read_verification_method(vm, doc.id);
      if (key.ok()) {
        doc.atproto_key = std::move(key).value();
        doc.atproto_key_error.clear();
      } else {
        doc.atproto_key_error = "DID document of " + doc.id + ": " + key.error().message;
      }
      break;  // the first #atproto entry is the key, even when it is unusable
    }
  }

  auto services = j.find("service");
  if (services != j.end() && services->is_array()) {
    for (const auto& svc : *services) {
      if (!svc.is_object() || !is_fragment_id(svc.value("id", nlohmann::json()), doc.id, "#atproto_pds")) continue;
      const std::string* type = string_claim(svc, "type");
      if (!type || *type != "AtprotoPersonalDataServer") continue;
      const std::string* endpoint = string_claim(svc, "serviceEndpoint");
      if (endpoint) {
        if (auto origin = http_origin(*endpoint)) doc.pds_endpoint = std::move(*origin);
      }
      break;
    }
  }
  return doc;
}

Result<PublicKey> atproto_signing_key(const DidDocument& doc) {
  if (doc.atproto_key) return *doc.atproto_key;
  return error(doc.atproto_key_error.empty() ? "DID document has no usable #atproto key" : doc.atproto_key_error);
}

std::string service_did(std::string_view public_host) {
  std::string host = to_lower(public_host);
  std::string did(kWebPrefix);
  for (char c : host) {
    if (c == ':') {
      did += "%3A";
    } else {
      did += c;
    }
  }
  return did;
}

nlohmann::json service_did_document(std::string_view public_host) {
  std::string host = to_lower(public_host);
  std::string_view name = std::string_view(host).substr(0, host.find(':'));
  std::string endpoint = std::string(is_local_host(name) ? "http://" : "https://") + host;
  return {{"@context", nlohmann::json::array({"https://www.w3.org/ns/did/v1"})},
          {"id", service_did(host)},
          {"service", nlohmann::json::array({{{"id", std::string(kServiceFragment)},
                                              {"type", "GroundmistSyncServer"},
                                              {"serviceEndpoint", endpoint}}})}};
}

std::vector<std::string> default_service_audiences(std::string_view public_host) {
  std::string did = service_did(public_host);
  return {did + std::string(kServiceFragment), did};
}

}  // namespace gm::atproto
