#include "cli/doctor_command.h"

#include <arpa/inet.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "atproto/did.h"
#include "atproto/resolver.h"
#include "auth/session_token.h"
#include "cli/atproto_commands.h"
#include "cli/config_file.h"
#include "cli/doctor_probe.h"
#include "cli/doctor_report.h"
#include "cli/serve_command.h"
#include "server/config.h"

namespace gm::cli {
namespace {

namespace fs = std::filesystem;

// The .deb's service user: who should own its data folder when doctor runs as root.
constexpr char kServiceUser[] = "groundmist-sync";
// Free space below both of these warns.
constexpr uint64_t kLowFreeBytes = uint64_t{256} << 20;
constexpr double kLowFreeFraction = 0.01;
constexpr int64_t kDoctorTokenSeconds = 60;

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string user_name(uid_t uid) {
  if (const passwd* pw = ::getpwuid(uid)) return pw->pw_name;
  return "uid " + std::to_string(uid);
}

std::string bytes_text(uint64_t n) {
  char buf[32];
  if (n >= (uint64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(n) / (1u << 30));
  } else {
    std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(n) / (1u << 20));
  }
  return buf;
}

CheckResult ok(const char* id, const char* name, std::string verdict) {
  return {id, name, CheckStatus::kOk, std::move(verdict), ""};
}
CheckResult warn(const char* id, const char* name, std::string verdict, std::string fix) {
  return {id, name, CheckStatus::kWarn, std::move(verdict), std::move(fix)};
}
CheckResult fail(const char* id, const char* name, std::string verdict, std::string fix) {
  return {id, name, CheckStatus::kFail, std::move(verdict), std::move(fix)};
}
CheckResult skip(const char* id, const char* name, std::string why) {
  return {id, name, CheckStatus::kSkip, std::move(why), ""};
}

// What the checks learn and pass on.
struct Doctor {
  const DoctorOptions& opts;
  ConfigFile file;
  std::string file_path;   // the file, absolute
  std::string file_shown;  // the settings' source as the report names it
  std::optional<LoadedSettings> settings;
  server::ServerConfig config;
  std::string host;       // the public host, valid (empty: unusable, see config)
  std::string host_name;  // without its port
  bool owner_ok = false;
  bool development = false;
  bool tls_files = false;
  bool resolves = false;
  std::chrono::milliseconds timeout{10'000};

  std::string origin() const { return std::string(tls_files || !development ? "https://" : "http://") + host; }
  // A development host's own certificate is trusted for doctor's requests (see the header).
  std::string ca_file() const { return development && tls_files ? config.tls_cert_file : std::string(); }
  std::string restart() const {
    return file.system ? "sudo systemctl restart groundmist-sync" : "restart `groundmist-sync serve`";
  }
};

// --- config ---------------------------------------------------------------------------

CheckResult check_config(Doctor& d) {
  auto loaded = load_settings(d.file);
  if (!loaded.ok()) {
    const bool unreadable = loaded.error().message.find(std::strerror(EACCES)) != std::string::npos;
    return fail("config", "config", loaded.error().message,
                loaded.error().code == ErrorCode::kNotFound
                    ? "give the file the server reads with --config FILE, or write one with `groundmist-sync setup`"
                : unreadable ? "run doctor as root or as the user the server runs as (who may read it)"
                             : "correct it in " + d.file_path + " (the server would not start with it either)");
  }
  d.settings = std::move(loaded).value();
  d.config = d.settings->config;
  if (d.opts.data_dir) d.config.data_dir = *d.opts.data_dir;
  // Relative to the working folder, as `serve` takes it (service files: already anchored).
  if (std::error_code ec; !d.config.data_dir.empty()) {
    const fs::path absolute = fs::absolute(d.config.data_dir, ec);
    if (!ec) d.config.data_dir = absolute.lexically_normal().string();
  }
  const server::ServerConfig& c = d.config;

  // Each problem is what is wrong and what to do: a setting to change in the file (said
  // once for all of them, with the restart), or something else.
  struct Problem {
    std::string what, action;
    bool in_file = true;
  };
  std::vector<Problem> problems;
  if (c.owner_did.empty()) {
    problems.push_back(
        {"ATPROTO_DID is not set: the server has no owner, listens on 127.0.0.1 only and takes only "
         "tokens minted on this machine",
         "set ATPROTO_DID=<your DID>"});
  }
  if (c.public_host.empty()) {
    problems.push_back({"GROUNDMIST_SYNC_HOST is not set: the server does not know the name apps reach it at",
                        "set GROUNDMIST_SYNC_HOST=<host name, e.g. sync.example.com>"});
  }
  if (Status s = check_identity_config(c); !s.ok()) problems.push_back({s.error().message, "correct it"});
  if (Status s = server::check_tls_files(c); !s.ok()) {
    problems.push_back(
        {s.error().message,
         "set both GROUNDMIST_SYNC_TLS_CERT and GROUNDMIST_SYNC_TLS_KEY, or neither (a proxy in front)"});
  }
  if (struct stat st{}; d.settings->file_exists && ::stat(d.file.path.c_str(), &st) == 0 &&
                        (st.st_mode & S_IRWXO) != 0 && holds_secret(d.settings->file_values)) {
    problems.push_back({d.file_path +
                            " holds a secret (GROUNDMIST_SYNC_SECRET_KEY) and every user of this machine "
                            "can read it (mode " +
                            octal_mode(st.st_mode) + "): anyone could mint session tokens",
                        "chmod o-rwx " + d.file_path, false});
  }

  d.owner_ok = atproto::is_atproto_did(c.owner_did);
  if (auto host = validate_sync_host(c.public_host); host.ok() && !c.public_host.empty()) {
    const bool has_port = host->find(':') != std::string::npos;
    if (!has_port || is_development_host(*host)) {
      d.host = *host;
      d.host_name = host->substr(0, host->find(':'));
      d.development = is_development_host(*host);
    }
  }
  d.tls_files = !c.tls_cert_file.empty() && !c.tls_key_file.empty();

  if (!problems.empty()) {
    std::string what, in_file, other;
    for (const Problem& p : problems) {
      what += (what.empty() ? "" : "; ") + p.what;
      std::string& fix = p.in_file ? in_file : other;
      fix += (fix.empty() ? "" : ", ") + p.action;
    }
    if (!in_file.empty()) {
      in_file += " in " + d.file_path + " (`groundmist-sync setup` writes the owner and host), then " + d.restart();
    }
    return fail("config", "config", d.file_shown + ": " + what,
                in_file + (in_file.empty() || other.empty() ? "" : "; ") + other);
  }
  std::string tls = d.tls_files ? "TLS " + c.tls_cert_file
                                : (d.development ? "no TLS (development host)" : "no TLS files (a proxy in front)");
  std::string verdict =
      d.file_shown + ": owner " + c.owner_did + ", host " + d.host + ", " + tls + ", data " + c.data_dir;
  for (const std::string& o : d.settings->overridden) verdict += "; " + o;
  return ok("config", "config", verdict);
}

// --- data folder ------------------------------------------------------------------------

CheckResult check_data_folder(const Doctor& d) {
  constexpr const char* id = "data_folder";
  constexpr const char* name = "data folder";
  if (!d.settings) return skip(id, name, "the settings could not be read (see config)");
  const std::string dir = d.config.data_dir;
  const std::string as_user = d.file.system ? "sudo -u " + std::string(kServiceUser) + " groundmist-sync doctor"
                                            : "groundmist-sync doctor as that user";

  // Whose it should be: the user running doctor, but the service user when root checks
  // the .deb's set-up.
  uid_t expected = ::geteuid();
  if (expected == 0 && d.file.system) {
    if (const passwd* pw = ::getpwnam(kServiceUser)) expected = pw->pw_uid;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT) {
      return fail(id, name, dir + " does not exist",
                  "start the server once (it creates it, private), or set DATA_DIR (or --data) to the server's");
    }
    return fail(id, name, "cannot look at " + dir + ": " + std::strerror(e), "run " + as_user);
  }
  if (!S_ISDIR(st.st_mode)) return fail(id, name, dir + " is not a folder", "set DATA_DIR to the server's folder");
  if (st.st_uid != expected) {
    // Only for the .deb's set-up is it known who runs the server; otherwise the folder's
    // owner most likely does, and doctor was run by someone else: handing the documents
    // and the key to whoever ran doctor would break the server (found by review).
    if (d.file.system) {
      return fail(id, name,
                  dir + " belongs to " + user_name(st.st_uid) + ", not to " + user_name(expected) +
                      " (who runs the server): it may not be able to write there",
                  "sudo chown -R " + user_name(expected) + " " + dir);
    }
    return fail(id, name, dir + " belongs to " + user_name(st.st_uid) + ", not to " + user_name(expected) + ", who runs doctor",
                "run doctor as the user the server runs as (" + user_name(st.st_uid) +
                    " if that is who runs it: sudo -u " + user_name(st.st_uid) + " groundmist-sync doctor)");
  }
  if ((st.st_mode & 077) != 0) {
    return fail(id, name,
                dir + " is mode " + octal_mode(st.st_mode) +
                    ": other users of this machine can open it (it holds your documents and the session key)",
                "chmod 700 " + dir);
  }
  if ((st.st_mode & 0700) != 0700) {
    return fail(id, name, dir + " is mode " + octal_mode(st.st_mode) + ": its owner cannot write in it",
                "chmod 700 " + dir);
  }
  std::string free_text;
  std::optional<CheckResult> low_space;
  if (struct statvfs vfs{}; ::statvfs(dir.c_str(), &vfs) == 0) {
    if (vfs.f_flag & ST_RDONLY) {
      return fail(id, name, dir + " is on a read-only file system", "mount it read-write (the server writes there)");
    }
    const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    const uint64_t total = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    free_text = bytes_text(free_bytes) + " free";
    if (free_bytes < kLowFreeBytes && static_cast<double>(free_bytes) < kLowFreeFraction * static_cast<double>(total)) {
      low_space = warn(id, name, dir + ": only " + free_text + " (changes are refused when the disk is full)",
                       "free some space on that file system");
    }
  }

  std::string key_text;
  if (!d.config.secret_key.empty()) {
    key_text = "session key from GROUNDMIST_SYNC_SECRET_KEY";
  } else {
    const fs::path key = auth::secret_key_path(dir);
    struct stat ks {};
    if (::lstat(key.c_str(), &ks) != 0) {
      const int e = errno;
      if (e != ENOENT)
        return fail(id, name, "cannot look at " + key.string() + ": " + std::strerror(e), "run " + as_user);
      if (low_space) return *low_space;
      return warn(id, name, dir + ": no " + key.string() + " yet (the server creates it when it first starts)",
                  "start the server, then run doctor again");
    }
    if (!S_ISREG(ks.st_mode)) {
      return fail(id, name, key.string() + " is not a regular file: the server cannot start with it",
                  "remove it (the server makes a new key: apps log in again) or restore it from a backup");
    }
    if ((ks.st_mode & 077) != 0) {
      return fail(id, name,
                  key.string() + " is mode " + octal_mode(ks.st_mode) +
                      ": other users can read the key that signs session tokens (and the server refuses it)",
                  "chmod 600 " + key.string());
    }
    if (ks.st_uid != expected) {
      return fail(id, name, key.string() + " belongs to " + user_name(ks.st_uid) + ", not " + user_name(expected),
                  "sudo chown " + user_name(expected) + " " + key.string());
    }
    if (ks.st_size != 32) {
      return fail(id, name,
                  key.string() + " is " + std::to_string(ks.st_size) + " bytes, not 32: the server refuses it",
                  "restore it from a backup, or remove it (the server makes a new key: every app logs in again)");
    }
    key_text = "secret.key 0600";
  }
  if (low_space) return *low_space;
  return ok(id, name,
            dir + ": " + user_name(st.st_uid) + "'s, mode " + octal_mode(st.st_mode) +
                (free_text.empty() ? "" : ", " + free_text) + "; " + key_text);
}

// --- DNS --------------------------------------------------------------------------------

CheckResult check_dns(Doctor& d) {
  constexpr const char* id = "dns";
  constexpr const char* name = "DNS";
  if (d.host.empty()) return skip(id, name, "no usable public host (see config)");
  const std::string& n = d.host_name;
  unsigned char buf[16];
  if (::inet_pton(AF_INET, n.c_str(), buf) == 1) {
    d.resolves = true;
    return ok(id, name, n + " is an address: nothing to look up");
  }
  const std::string add_record = "add an A record (IPv4) and/or an AAAA record (IPv6) for " + n +
                                 " at your DNS provider, pointing at this machine's public address; check with "
                                 "`getent hosts " +
                                 n + "`";
  // RFC 6761 §6.4: names under .invalid never resolve; no resolver is asked.
  if (n == "invalid" || n.ends_with(".invalid")) {
    return fail(id, name, n + " is under .invalid, which never resolves (RFC 6761)",
                "set GROUNDMIST_SYNC_HOST to the name apps reach this server at, and " + add_record);
  }
  auto addresses = resolve_name(n, d.timeout);
  if (!addresses.ok()) {
    return fail(id, name, addresses.error().message,
                addresses.error().code == ErrorCode::kNotFound
                    ? add_record
                    : "check this machine's resolver (/etc/resolv.conf) and network, then " + add_record);
  }
  d.resolves = true;
  std::string list;
  bool all_private = true;
  for (const std::string& a : *addresses) {
    list += (list.empty() ? "" : ", ") + a;
    all_private = all_private && is_non_public_address(a);
  }
  if (d.development) return ok(id, name, n + " → " + list + " (a development host: only this machine reaches it)");
  if (all_private) {
    return warn(id, name, n + " → " + list + " only: apps outside this network cannot reach it",
                "point " + n +
                    "'s public DNS record at this machine's public address (unless only your own "
                    "network should reach it)");
  }
  return ok(id, name, n + " → " + list);
}

// --- TLS --------------------------------------------------------------------------------

CheckResult check_tls(const Doctor& d) {
  constexpr const char* id = "tls";
  constexpr const char* name = "TLS";
  if (d.host.empty()) return skip(id, name, "no usable public host (see config)");
  if (d.tls_files) {
    auto facts = certificate_file_facts(d.config.tls_cert_file, d.config.tls_key_file, d.host_name);
    if (!facts.ok()) {
      return fail(id, name, facts.error().message,
                  "correct GROUNDMIST_SYNC_TLS_CERT / GROUNDMIST_SYNC_TLS_KEY (docs/deploy.md, \"Native TLS\"); the "
                  "server does not start with these files");
    }
    return certificate_verdict(*facts, d.host, d.development,
                               "renew it (certbot renew; its deploy hook copies the files, docs/deploy.md), then " +
                                   std::string(d.file.system ? "sudo systemctl reload groundmist-sync"
                                                             : "send SIGHUP to `groundmist-sync serve`"));
  }
  if (d.development) {
    return ok(id, name, "no TLS files: " + d.host + " is a development host, reached over http and ws");
  }
  if (!d.resolves) return skip(id, name, d.host_name + " does not resolve (see DNS)");
  auto facts = probe_certificate(d.host_name, 443, d.timeout);
  if (!facts.ok()) {
    return fail(id, name, "https://" + d.host_name + ": " + facts.error().message,
                "nothing serves TLS for " + d.host_name +
                    " on port 443: start the proxy (Caddy: `systemctl status caddy`, deploy/Caddyfile) or "
                    "give the server a certificate (GROUNDMIST_SYNC_TLS_CERT/_KEY, docs/deploy.md), and open port 443");
  }
  return certificate_verdict(*facts, d.host, false,
                             "the proxy in front renews it (Caddy does so itself: see `journalctl -u caddy`)");
}

// --- did.json -----------------------------------------------------------------------------

CheckResult check_did_document(const Doctor& d) {
  constexpr const char* id = "did_json";
  constexpr const char* name = "did.json";
  if (d.host.empty()) return skip(id, name, "no usable public host (see config)");
  if (!d.resolves) return skip(id, name, d.host_name + " does not resolve (see DNS)");
  atproto::HttpOptions options;
  options.timeout = d.timeout;
  options.ca_file = d.ca_file();
  const DidJsonCheck c = check_did_json(d.host, d.origin(), options);
  if (!c.ok) {
    // libcurl's words for a certificate that does not verify: the TLS check says why.
    const bool certificate =
        c.verdict.find("SSL") != std::string::npos || c.verdict.find("certificate") != std::string::npos;
    return fail(id, name, c.verdict, certificate ? "apps fail the same way: see TLS above" : c.fix);
  }
  return ok(id, name, d.origin() + "/.well-known/did.json: " + c.verdict);
}

// --- record -------------------------------------------------------------------------------

CheckResult check_record(const Doctor& d) {
  constexpr const char* id = "record";
  constexpr const char* name = "record";
  if (!d.owner_ok) return skip(id, name, "no owner DID (see config)");
  if (d.host.empty()) return skip(id, name, "no usable public host (see config)");
  const std::string& did = d.config.owner_did;
  const bool default_plc = d.config.plc_url == atproto::kDefaultPlcUrl;
  const std::string publish = "groundmist-sync publish --host " + d.host + " --did " + did +
                              (default_plc ? "" : " --plc-url " + d.config.plc_url) +
                              " (with an app password), or run `groundmist-sync setup` again";
  atproto::DidResolver resolver(d.config.plc_url);
  auto doc = resolver.resolve(did);
  if (!doc.ok()) {
    return fail(id, name, "cannot resolve " + did + ": " + doc.error().message,
                atproto::is_did_not_found(doc.error())
                    ? "check ATPROTO_DID (and PLC_URL, now " + d.config.plc_url + ")"
                    : "is the PLC directory " + d.config.plc_url + " reachable from here (PLC_URL)?");
  }
  if (doc->pds_endpoint.empty()) {
    return fail(id, name, "the DID document of " + did + " names no PDS (#atproto_pds service)",
                "check ATPROTO_DID: it must be the DID of your atproto account");
  }
  auto record = get_discovery_record(doc->pds_endpoint, did);
  if (!record.ok()) {
    return fail(
        id, name, record.error().message,
        record.error().code == ErrorCode::kInvalid ? publish : "is your PDS " + doc->pds_endpoint + " reachable?");
  }
  if (!*record) {
    return fail(id, name,
                "no " + std::string(kDiscoveryCollection) + " record in " + did + "'s repository on " +
                    doc->pds_endpoint + ": apps cannot find this server",
                publish);
  }
  auto published = validate_sync_host(**record);
  if (!published.ok() || *published != d.host) {
    return fail(id, name,
                discovery_record_uri(did) + " names \"" + **record + "\", not " + d.host + ": apps go " +
                    (published.ok() ? "there" : "nowhere"),
                publish);
  }
  return ok(id, name, discovery_record_uri(did) + " names " + d.host + " (PDS " + doc->pds_endpoint + ")");
}

// --- WebSocket ----------------------------------------------------------------------------

CheckResult check_websocket(const Doctor& d) {
  constexpr const char* id = "websocket";
  constexpr const char* name = "WebSocket";
  if (d.host.empty()) return skip(id, name, "no usable public host (see config)");
  if (!d.resolves) return skip(id, name, d.host_name + " does not resolve (see DNS)");
  std::optional<std::string_view> secret;
  if (!d.config.secret_key.empty()) secret = d.config.secret_key;
  const fs::path key_path = auth::secret_key_path(d.config.data_dir);
  // doctor never creates the key (load_token_key would): a key of its own would not be
  // the server's.
  if (std::error_code ec; !secret && !fs::exists(key_path, ec)) {
    return fail(id, name,
                "no session key to mint a test token with: " + key_path.string() +
                    " does not exist and GROUNDMIST_SYNC_SECRET_KEY is not set",
                "start the server once (it creates the key), then run doctor again");
  }
  auto key = auth::load_token_key(d.config.data_dir, secret);
  if (!key.ok()) {
    // Unreadable to doctor, or a key the server refuses too (its mode, its size).
    const bool readable = secret || ::access(key_path.c_str(), R_OK) == 0;
    return fail(id, name, "cannot use the session key: " + key.error().message,
                readable ? "see data folder above"
                         : "run doctor as the user the server runs as" +
                               std::string(d.file.system ? " (sudo -u groundmist-sync groundmist-sync doctor)" : ""));
  }
  const std::string token = auth::mint_session_token(*key, auth::new_session_claims(kDoctorGroup, kDoctorTokenSeconds));
  WebSocketTarget target{d.host, d.tls_files || !d.development, d.ca_file()};
  const std::string url = std::string(target.tls ? "wss://" : "ws://") + d.host + "/";
  RoundTripFailure failure;
  auto trip = websocket_round_trip(target, token, d.timeout, &failure);
  if (trip.ok()) {
    return ok(id, name,
              url + ": join answered by peer " + trip->server_peer_id + " (protocol " + trip->selected_protocol +
                  ") in " + std::to_string(trip->took.count()) + " ms");
  }
  std::string fix;
  switch (failure.stage) {
    case RoundTripStage::kResolve:
      fix = "see DNS above";
      break;
    case RoundTripStage::kConnect:
      fix = "is the server running (" +
            std::string(d.file.system ? "`systemctl status groundmist-sync`" : "`groundmist-sync serve`") +
            ") and reachable at " + d.host +
            (d.development ? "" : " (the proxy running, port 443 open to the internet)") + "?";
      break;
    case RoundTripStage::kTls:
      fix = "apps' sockets fail the same way: see TLS above";
      break;
    case RoundTripStage::kUpgrade:
      if (failure.http_status == 401) {
        fix = "the server refused a token signed with " + key->source() + ": is it running with this data folder (" +
              d.config.data_dir + ") and the same GROUNDMIST_SYNC_SECRET_KEY as these settings? " + d.restart() +
              " after changing them";
      } else if (failure.http_status == 429 || failure.http_status == 503) {
        fix = "the server is at its connection limits (--max-connections, --max-sockets-per-group): see its log";
      } else {
        fix =
            "the upgrade did not reach the sync server: check that the proxy passes WebSocket upgrades on / to "
            "it (deploy/Caddyfile does)";
      }
      break;
    case RoundTripStage::kJoin:
      fix = "the server does not answer automerge-repo's join as it should: is it Groundmist Sync, and up to date?";
      break;
    case RoundTripStage::kTimeout:
      fix = "something accepts connections at " + d.host +
            " but does not answer: is it the server (the proxy's "
            "upstream, 127.0.0.1:" +
            std::to_string(d.config.port) + ")?";
      break;
  }
  return fail(id, name, url + ": " + trip.error().message, fix);
}

int run_doctor(const DoctorOptions& opts) {
  Doctor d{opts};
  d.file = choose_config_file(opts.config);
  std::error_code ec;
  const fs::path absolute = fs::absolute(d.file.path, ec);
  d.file_path = ec ? d.file.path : absolute.lexically_normal().string();
  d.file_shown = d.file_path + (d.file.service_file ? "" : " (and the environment)");
  if (!(opts.timeout_seconds > 0 && opts.timeout_seconds <= 600)) {
    std::cerr << "groundmist-sync doctor: --timeout must be more than 0 and at most 600 seconds\n";
    return 2;
  }
  d.timeout = std::chrono::milliseconds(std::llround(opts.timeout_seconds * 1000));

  std::vector<CheckResult> checks;
  checks.push_back(check_config(d));
  checks.push_back(check_data_folder(d));
  checks.push_back(check_dns(d));
  checks.push_back(check_tls(d));
  checks.push_back(check_did_document(d));
  checks.push_back(check_record(d));
  checks.push_back(check_websocket(d));
  if (opts.json) {
    std::cout << format_json(checks, d.file_shown).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << format_text(checks);
  }
  return exit_status(checks);
}

}  // namespace

void add_doctor_command(CLI::App& app, DoctorOptions& opts) {
  CLI::App* cmd = app.add_subcommand(
      "doctor", "Check the set-up: settings, data folder, DNS, TLS, did.json, the published record, a WebSocket");
  cmd->add_option("--config", opts.config,
                  "The settings file (default: /etc/groundmist-sync/groundmist-sync.conf if it exists, else .env and "
                  "the environment)");
  cmd->add_option("--data", opts.data_dir, "The data folder (default: DATA_DIR from the settings)");
  cmd->add_option("--timeout", opts.timeout_seconds, "Seconds each network step may take (default 10)");
  cmd->add_flag("--json", opts.json, "Print one JSON object");
  cmd->callback([&opts] { opts.exit_code = run_doctor(opts); });
}

}  // namespace gm::cli
