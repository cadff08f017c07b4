#include "auth/session_token.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

#include "util/base64url.h"
#include "storage/durable_file.h"

namespace gm::auth {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "gms";
constexpr std::string_view kEnvSecret = "GROUNDMIST_SYNC_SECRET_KEY";
constexpr size_t kKeyFileBytes = 32;

std::array<uint8_t, 32> hkdf_sha256(ByteView ikm) {
  static const char kSalt[] = "groundmist-sync";
  static const char kInfo[] = "session-token v1";
  std::array<uint8_t, 32> out{};
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm.data()), ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(kSalt), sizeof kSalt - 1),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(kInfo), sizeof kInfo - 1),
      OSSL_PARAM_construct_end()};
  bool ok = ctx && EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (!ok) std::abort();  // OpenSSL without HKDF/SHA-256: no safe fallback
  return out;
}

std::array<uint8_t, 32> hmac_sha256(ByteView key, std::string_view data) {
  std::array<uint8_t, 32> mac{};
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const uint8_t*>(data.data()),
            data.size(), mac.data(), &len) ||
      len != mac.size()) {
    std::abort();
  }
  return mac;
}

// Never starting with '-': the owner types it after `sessions revoke`, where it would
// read as an option (1 id in 64 did; found by a failing CI run).
std::string random_token_id() {
  std::array<uint8_t, 16> id{};
  do {
    if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) std::abort();
  } while ((id[0] >> 2) == 62);  // base64url's 62nd character is '-'
  return base64url_encode(ByteView(id.data(), id.size()));
}

std::string iso_time(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Error malformed(const std::string& why) { return error("session token is malformed: " + why); }

}  // namespace

TokenKey TokenKey::from_secret(std::string_view secret) {
  TokenKey k;
  k.key_ = hkdf_sha256(as_bytes(secret));
  k.source_ = std::string(kEnvSecret);
  return k;
}

TokenKey TokenKey::from_key_file_bytes(ByteView bytes, std::string source) {
  TokenKey k;
  k.key_ = hkdf_sha256(bytes);
  k.source_ = std::move(source);
  return k;
}

TokenKey TokenKey::derive(std::string_view purpose) const {
  TokenKey k;
  k.key_ = hmac_sha256(bytes(), purpose);
  k.source_ = source_ + " (" + std::string(purpose) + ")";
  return k;
}

fs::path secret_key_path(const fs::path& data_dir) { return data_dir / ".groundmist" / "secret.key"; }

Result<TokenKey> load_token_key(const fs::path& data_dir, std::optional<std::string_view> secret) {
  if (secret && !secret->empty()) return TokenKey::from_secret(*secret);
  fs::path path = secret_key_path(data_dir);
  GM_TRY(storage::create_directories_durably(path.parent_path()));
  for (int attempt = 0; attempt < 3; ++attempt) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISREG(st.st_mode)) return error(path.string() + " is not a regular file; remove it or set " + std::string(kEnvSecret));
      if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return error(path.string() + " is readable by other users (mode " + mode + "); run: chmod 600 " + path.string());
      }
      GM_ASSIGN_OR_RETURN(std::optional<Bytes> bytes, storage::read_file(path));
      if (!bytes) continue;  // removed meanwhile: create it
      if (bytes->size() != kKeyFileBytes) {
        return error(path.string() + " holds " + std::to_string(bytes->size()) + " bytes, expected " +
                     std::to_string(kKeyFileBytes) + "; remove it to generate a new key (tokens issued so far stop working)");
      }
      TokenKey key = TokenKey::from_key_file_bytes(*bytes, path.string());
      OPENSSL_cleanse(bytes->data(), bytes->size());
      return key;
    }
    if (errno != ENOENT) return storage::errno_error("cannot inspect", path, errno);
    std::array<uint8_t, kKeyFileBytes> fresh{};
    if (RAND_bytes(fresh.data(), static_cast<int>(fresh.size())) != 1) return error("no randomness for a new secret key");
    auto created = storage::create_file_durably(path, ByteView(fresh.data(), fresh.size()), 0600);
    OPENSSL_cleanse(fresh.data(), fresh.size());
    if (!created.ok()) return context("creating the session-token key", created.error());
    // Created by us or, concurrently, by another process: read it back either way.
  }
  return error("cannot settle the session-token key in " + path.string());
}

Result<TokenKey> load_token_key_from_env(const fs::path& data_dir) {
  const char* value = std::getenv(std::string(kEnvSecret).c_str());
  return load_token_key(data_dir, value ? std::optional<std::string_view>(value) : std::nullopt);
}

std::string iso8601_utc(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

SessionClaims new_session_claims(std::string group, int64_t ttl_seconds, int64_t now) {
  SessionClaims c;
  c.group = std::move(group);
  c.issued_at = now;
  c.expires_at = now + ttl_seconds;
  c.token_id = random_token_id();
  return c;
}

std::string mint_session_token(const TokenKey& key, SessionClaims claims) {
  if (claims.token_id.empty()) claims.token_id = random_token_id();
  nlohmann::ordered_json j;
  j["v"] = kSessionTokenVersion;
  j["grp"] = claims.group;
  j["iat"] = claims.issued_at;
  j["exp"] = claims.expires_at;
  j["jti"] = claims.token_id;
  if (claims.owner_did) j["sub"] = *claims.owner_did;
  if (claims.grant_id) j["gid"] = *claims.grant_id;
  for (const auto& [name, value] : claims.extra) {
    if (!j.contains(name)) j[name] = value;
  }
  std::string head = std::string(kPrefix) + std::to_string(kSessionTokenVersion) + "." + base64url_encode(as_bytes(j.dump()));
  auto mac = hmac_sha256(key.bytes(), head);
  return head + "." + base64url_encode(ByteView(mac.data(), mac.size()));
}

Result<SessionClaims> verify_session_token(const TokenKey& key, std::string_view token, int64_t now) {
  if (token.empty()) return malformed("it is empty");
  if (token.size() > kMaxSessionTokenLength) return malformed("longer than " + std::to_string(kMaxSessionTokenLength) + " characters");
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  std::string_view prefix = token.substr(0, dot1);
  if (prefix.substr(0, kPrefix.size()) != kPrefix) {
    if (token.substr(0, 3) == "eyJ") {
      return malformed("it looks like a JWT (the prototype server's sync token); get a new token from /authenticate");
    }
    return malformed("it does not start with \"gms<version>.\"");
  }
  std::string_view version_text = prefix.substr(kPrefix.size());
  if (version_text.empty() || version_text.size() > 6 ||
      version_text.find_first_not_of("0123456789") != std::string_view::npos) {
    return malformed("bad version \"" + std::string(version_text.substr(0, 8)) + "\"");
  }
  int version = std::stoi(std::string(version_text));
  if (version != kSessionTokenVersion) {
    return error("session token version " + std::to_string(version) + " is not supported (this server reads version " +
                 std::to_string(kSessionTokenVersion) + ")");
  }
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return malformed("expected 3 parts separated by '.'");
  }
  std::string_view signed_part = token.substr(0, dot2);
  auto mac = base64url_decode(token.substr(dot2 + 1));
  if (!mac.ok() || mac->size() != 32) return malformed("the signature is not 32 bytes of base64url");
  auto expected = hmac_sha256(key.bytes(), signed_part);
  if (CRYPTO_memcmp(expected.data(), mac->data(), expected.size()) != 0) {
    return error("session token signature is invalid (made with another server key, or altered)");
  }

  // Authentic from here on: what is wrong now is a bug or a newer format, not an attack.
  auto json_bytes = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!json_bytes.ok()) return malformed("claims: " + json_bytes.error().message);
  auto j = nlohmann::json::parse(as_string(*json_bytes), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return malformed("claims are not a JSON object");
  auto integer = [&](const char* name) -> Result<int64_t> {
    auto it = j.find(name);
    if (it == j.end() || !it->is_number_integer()) return malformed(std::string("claim \"") + name + "\" is missing or not an integer");
    return it->get<int64_t>();
  };
  auto text = [&](const char* name) -> Result<std::string> {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return malformed(std::string("claim \"") + name + "\" is missing or not a string");
    return it->get<std::string>();
  };
  GM_ASSIGN_OR_RETURN(int64_t claimed_version, integer("v"));
  if (claimed_version != version) return malformed("claims say version " + std::to_string(claimed_version));
  SessionClaims c;
  GM_ASSIGN_OR_RETURN(c.group, text("grp"));
  if (c.group.empty()) return malformed("claim \"grp\" is empty");
  GM_ASSIGN_OR_RETURN(c.issued_at, integer("iat"));
  GM_ASSIGN_OR_RETURN(c.expires_at, integer("exp"));
  GM_ASSIGN_OR_RETURN(c.token_id, text("jti"));
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "v" || name == "grp" || name == "iat" || name == "exp" || name == "jti") continue;
    if (!it->is_string()) continue;  // later claim types: ignored by this version
    if (name == "sub") c.owner_did = it->get<std::string>();
    else if (name == "gid") c.grant_id = it->get<std::string>();
    else c.extra[name] = it->get<std::string>();
  }
  if (now >= c.expires_at) {
    return error("session token expired at " + iso_time(c.expires_at) + " (now " + iso_time(now) + "); get a new one");
  }
  if (c.issued_at > now + kClockSkewSeconds) {
    return error("session token is not valid yet: issued at " + iso_time(c.issued_at) + ", now " + iso_time(now) +
                 " (check the clock)");
  }
  return c;
}

Bytes keyed_id(const TokenKey& key, std::string_view purpose, std::string_view subject) {
  std::string data(purpose);
  data += '\n';
  data += subject;
  const auto mac = hmac_sha256(key.bytes(), data);
  return Bytes(mac.begin(), mac.begin() + 16);
}

Result<int64_t> parse_duration(std::string_view text) {
  auto bad = [&] {
    return error("invalid duration \"" + std::string(text.substr(0, 40)) + "\": use a number with s, m, h, d or w (e.g. 30d)");
  };
  if (text.empty()) return bad();
  int64_t unit = 1;
  std::string_view digits = text;
  switch (text.back()) {
    case 's': unit = 1; digits.remove_suffix(1); break;
    case 'm': unit = 60; digits.remove_suffix(1); break;
    case 'h': unit = 3600; digits.remove_suffix(1); break;
    case 'd': unit = 86400; digits.remove_suffix(1); break;
    case 'w': unit = 7 * 86400; digits.remove_suffix(1); break;
    default: break;
  }
  if (digits.empty() || digits.size() > 12 || digits.find_first_not_of("0123456789") != std::string_view::npos) return bad();
  int64_t n = std::stoll(std::string(digits));
  if (n <= 0) return error("duration \"" + std::string(text) + "\" must be positive");
  if (n > (int64_t{1} << 40) / unit) return error("duration \"" + std::string(text) + "\" is too long");
  return n * unit;
}

}  // namespace gm::auth
