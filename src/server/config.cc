#include "server/config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace gm::server {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}

// One `.env` line; false when it is blank, a comment or not KEY=VALUE.
bool parse_dotenv_line(std::string_view line, std::string& key, std::string& value) {
  line = trim(line);
  if (line.empty() || line.front() == '#') return false;
  if (line.substr(0, 7) == "export " || line.substr(0, 7) == "export\t") line = trim(line.substr(7));
  size_t k = 0;
  while (k < line.size() && is_key_char(line[k])) ++k;
  if (k == 0) return false;
  key.assign(line.substr(0, k));
  std::string_view rest = trim(line.substr(k));
  if (rest.empty() || rest.front() != '=') return false;
  rest = trim(rest.substr(1));

  // As dotenv 16: a quoted value ends at a closing quote followed only by blanks or a
  // # comment (`KEY="a" # was "b"` is a). Otherwise the value runs to the first '#',
  // and a pair of equal quotes around it is taken off (`'/srv/bob's data'`).
  std::string_view raw;
  const char first = rest.empty() ? '\0' : rest.front();
  const bool quoted = first == '"' || first == '\'' || first == '`';
  for (size_t close = 1; quoted && close < rest.size(); ++close) {
    if (rest[close] == '\\' && close + 2 < rest.size()) {
      ++close;  // an escaped character, unless it would be the closing quote at the end
      continue;
    }
    if (rest[close] != first) continue;
    const std::string_view after = trim(rest.substr(close + 1));
    if (after.empty() || after.front() == '#') raw = rest.substr(0, close + 1);
    break;
  }
  if (raw.empty()) raw = trim(rest.substr(0, rest.find('#')));
  if (raw.size() >= 2 && (raw.front() == '"' || raw.front() == '\'' || raw.front() == '`') &&
      raw.back() == raw.front()) {
    const char quote = raw.front();
    raw = raw.substr(1, raw.size() - 2);
    value.clear();
    for (size_t i = 0; i < raw.size(); ++i) {
      const char next = i + 1 < raw.size() ? raw[i + 1] : '\0';
      if (quote == '"' && raw[i] == '\\' && (next == 'n' || next == 'r')) {
        value.push_back(next == 'n' ? '\n' : '\r');
        ++i;
      } else {
        value.push_back(raw[i]);
      }
    }
    return true;
  }
  value.assign(raw);
  return true;
}

}  // namespace

EnvMap parse_dotenv(std::string_view text) {
  EnvMap out;
  std::string key, value;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (parse_dotenv_line(line, key, value)) out[key] = value;
  }
  return out;
}

Result<EnvMap> read_dotenv_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return EnvMap{};
    return error("cannot read " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_dotenv(text.str());
}

Environment::Environment(EnvMap dotenv, Getenv getenv) : dotenv_(std::move(dotenv)), getenv_(std::move(getenv)) {
  if (!getenv_) {
    getenv_ = [](const std::string& name) -> std::optional<std::string> {
      const char* v = std::getenv(name.c_str());
      if (v == nullptr) return std::nullopt;
      return std::string(v);
    };
  }
}

std::optional<std::string> Environment::get(const std::string& name) const {
  if (auto v = getenv_(name)) return v;
  auto it = dotenv_.find(name);
  if (it == dotenv_.end()) return std::nullopt;
  return it->second;
}

Status apply_environment(const Environment& env, ServerConfig& config, bool read_port) {
  if (auto port = read_port ? env.get("PORT") : std::nullopt; port && !port->empty()) {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(port->c_str(), &end, 10);
    if (errno != 0 || end == port->c_str() || *end != '\0' || v < 0 || v > 65535) {
      return error("PORT=\"" + *port + "\" is not a port number (0-65535)");
    }
    config.port = static_cast<uint16_t>(v);
  }
  if (auto dir = env.get("DATA_DIR"); dir && !dir->empty()) config.data_dir = *dir;
  if (auto key = env.get("GROUNDMIST_SYNC_SECRET_KEY")) config.secret_key = *key;
  if (auto did = env.get("ATPROTO_DID")) config.owner_did = *did;
  if (auto host = env.get("GROUNDMIST_SYNC_HOST"); host && !host->empty()) config.public_host = *host;
  if (auto plc = env.get("PLC_URL"); plc && !plc->empty()) config.plc_url = *plc;
  if (auto cert = env.get("GROUNDMIST_SYNC_TLS_CERT"); cert && !cert->empty()) config.tls_cert_file = *cert;
  if (auto key = env.get("GROUNDMIST_SYNC_TLS_KEY"); key && !key->empty()) config.tls_key_file = *key;
  return Status::Ok();
}

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.substr(0, 4) == "127.";
}

Status check_tls_files(const ServerConfig& config) {
  if (config.tls_cert_file.empty() && !config.tls_key_file.empty()) {
    return error("a TLS key (--tls-key, GROUNDMIST_SYNC_TLS_KEY) without a certificate: give --tls-cert too");
  }
  if (!config.tls_cert_file.empty() && config.tls_key_file.empty()) {
    return error("a TLS certificate (--tls-cert, GROUNDMIST_SYNC_TLS_CERT) without its key: give --tls-key too");
  }
  return Status::Ok();
}

Status resolve_host(ServerConfig& config) {
  // "[::1]", as addresses are written in URLs: the address is what is inside.
  if (config.host.size() > 2 && config.host.front() == '[' && config.host.back() == ']') {
    config.host = config.host.substr(1, config.host.size() - 2);
  }
  if (config.owner_did.empty()) {
    if (config.host.empty()) {
      config.host = "127.0.0.1";
    } else if (!is_loopback_host(config.host)) {
      return error("--host " + config.host +
                   ": without an owner the server listens on loopback only; set ATPROTO_DID "
                   "(environment or .env) to serve other addresses");
    }
  } else if (config.host.empty()) {
    config.host = "0.0.0.0";
  }
  return Status::Ok();
}

}  // namespace gm::server
