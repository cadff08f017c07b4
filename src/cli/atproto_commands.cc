#include "cli/atproto_commands.h"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "atproto/did.h"
#include "atproto/http_client.h"
#include "atproto/resolver.h"
#include "server/config.h"
#include "util/text.h"

namespace gm::cli {
namespace {

using nlohmann::json;

constexpr const char* kCollection = kDiscoveryCollection;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t start = s.find_first_not_of(ws);
  if (start == std::string_view::npos) return {};
  return s.substr(start, s.find_last_not_of(ws) - start + 1);
}

// The environment, then .env: PLC_URL and ATPROTO_APP_PASSWORD may live there as the
// server's settings do. An unreadable .env is reported, not fatal: nothing here needs it.
server::Environment load_environment(const char* command) {
  auto dotenv = server::read_dotenv_file(".env");
  if (!dotenv.ok()) {
    std::cerr << "groundmist-sync " << command << ": ignoring .env: " << dotenv.error().message << "\n";
    return server::Environment(server::EnvMap{});
  }
  return server::Environment(std::move(dotenv).value());
}

std::string plc_url(const AtprotoOptions& opts, const server::Environment& env) {
  if (!opts.plc_url.empty()) return opts.plc_url;
  if (auto url = env.get("PLC_URL"); url && !url->empty()) return *url;
  return std::string(atproto::kDefaultPlcUrl);
}

// --- the password, from the environment or the terminal ------------------------------

termios g_saved_termios;

// Puts echo back if the user interrupts the prompt, then dies of the signal as usual.
extern "C" void restore_echo_and_reraise(int sig) {
  ::tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

Result<std::string> read_hidden_line(const std::string& prompt) {
  std::cerr << prompt << std::flush;
  std::string line;
  if (::tcgetattr(STDIN_FILENO, &g_saved_termios) == 0) {
    termios quiet = g_saved_termios;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    struct sigaction on_signal = {}, old_int = {}, old_term = {}, old_hup = {};
    on_signal.sa_handler = restore_echo_and_reraise;
    ::sigaction(SIGINT, &on_signal, &old_int);
    ::sigaction(SIGTERM, &on_signal, &old_term);
    ::sigaction(SIGHUP, &on_signal, &old_hup);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::getline(std::cin, line);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    ::sigaction(SIGHUP, &old_hup, nullptr);
  } else {
    std::getline(std::cin, line);
  }
  std::cerr << "\n";
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return error("nothing was typed");
  return line;
}

namespace {

Result<std::string> read_password(const server::Environment& env, const std::string& account) {
  if (auto password = env.get("ATPROTO_APP_PASSWORD"); password && !password->empty()) return *password;
  if (!::isatty(STDIN_FILENO)) {
    return error(
        "ATPROTO_APP_PASSWORD is not set and standard input is not a terminal to ask for it: set "
        "ATPROTO_APP_PASSWORD to an app password of " +
        account + " (Bluesky: Settings > Privacy and security > App passwords)");
  }
  auto password = read_hidden_line("App password for " + account + ": ");
  if (!password.ok()) return error("no password given");
  return password;
}

// --- finding and logging in to the owner's account ---------------------------------------

Result<std::string> handle_to_did(const std::string& handle, const std::string& pds) {
  if (!pds.empty()) {
    atproto::XrpcFailure failure;
    auto answer = atproto::xrpc_query(pds, "com.atproto.identity.resolveHandle", {{"handle", handle}}, {}, &failure);
    if (!answer.ok()) {
      return error("could not resolve the handle " + handle + " on the PDS at " + pds + ": " + answer.error().message +
                   (failure.status == 400 ? ": check the handle, or give --did" : ""));
    }
    const auto did = answer->find("did");
    if (did == answer->end() || !did->is_string() || !atproto::is_atproto_did(did->get<std::string>())) {
      return error("com.atproto.identity.resolveHandle on " + pds + " did not answer a DID for " + handle);
    }
    return did->get<std::string>();
  }
  auto did = atproto::resolve_handle_https(handle);
  if (!did.ok()) {
    return error(did.error().message +
                 " (only the https://<handle>/.well-known/atproto-did method is tried: give --did DID, or "
                 "--pds URL to ask your PDS)");
  }
  return did;
}

}  // namespace

Result<Account> find_account(const AtprotoOptions& opts, const server::Environment& env) {
  if (opts.handle.empty() == opts.did.empty()) return error("give either --handle or --did");
  if (!opts.pds.empty()) {
    if (Status s = atproto::check_url(opts.pds); !s.ok()) return context("--pds", s.error());
  }
  Account account;
  account.pds = opts.pds;
  if (!opts.did.empty()) {
    if (!atproto::is_atproto_did(opts.did)) {
      return error("--did \"" + opts.did + "\" is not an atproto DID (did:plc:... or did:web:...)");
    }
    account.did = opts.did;
    account.identifier = opts.did;
  } else {
    const std::string handle = lower(opts.handle);
    if (!atproto::is_handle_syntax(handle)) {
      return error("--handle \"" + opts.handle + "\" is not a handle (a domain name such as alice.bsky.social)");
    }
    GM_ASSIGN_OR_RETURN(account.did, handle_to_did(handle, opts.pds));
    account.identifier = handle;
  }
  if (account.pds.empty()) {
    const std::string plc = plc_url(opts, env);
    atproto::DidResolver resolver(plc);
    auto doc = resolver.resolve(account.did);
    if (!doc.ok()) return error(doc.error().message + " (the PLC directory is " + plc + "; or give --pds URL)");
    if (doc->pds_endpoint.empty()) {
      return error("the DID document of " + account.did + " names no PDS (#atproto_pds service): give --pds URL");
    }
    account.pds = doc->pds_endpoint;
  }
  return account;
}

Result<PdsLogin> log_in(const Account& account, const std::string& password) {
  atproto::XrpcFailure failure;
  auto answer = atproto::xrpc_procedure(account.pds, "com.atproto.server.createSession",
                                        {{"identifier", account.identifier}, {"password", password}}, {}, &failure);
  if (!answer.ok()) {
    std::string advice;
    if (failure.error == "AuthenticationRequired") {
      advice =
          " (check the handle or DID; use an app password: Bluesky Settings > Privacy and security > "
          "App passwords)";
    } else if (failure.error == "AuthFactorTokenRequired") {
      advice = ": this account asks for an email code at sign-in; use an app password instead";
    }
    return error("could not log in to " + account.pds + ": " + answer.error().message + advice);
  }
  PdsLogin session;
  const json& a = *answer;
  if (!a.contains("accessJwt") || !a["accessJwt"].is_string() || !a.contains("did") || !a["did"].is_string()) {
    return error("com.atproto.server.createSession on " + account.pds + " answered without accessJwt and did");
  }
  if (a["did"].get<std::string>() != account.did) {
    return error("logged in to " + account.pds + " as " + printable(a["did"].get<std::string>(), 100) + ", not " +
                 account.did + ": check --handle/--did and --pds");
  }
  session.access_jwt = a["accessJwt"].get<std::string>();
  if (a.contains("refreshJwt") && a["refreshJwt"].is_string()) session.refresh_jwt = a["refreshJwt"].get<std::string>();
  return session;
}

// Ends the session we opened (its refresh token would otherwise live on for months).
void log_out(const Account& account, const PdsLogin& session) {
  if (session.refresh_jwt.empty()) return;
  (void)atproto::xrpc_procedure(account.pds, "com.atproto.server.deleteSession", json::object(), session.refresh_jwt);
}

std::string discovery_record_uri(const std::string& did) { return "at://" + did + "/" + kCollection + "/" + did; }

Result<std::string> put_discovery_record(const Account& account, const PdsLogin& session, const std::string& host) {
  json input = {{"repo", account.did},
                {"collection", kCollection},
                {"rkey", account.did},
                {"record", {{"$type", kCollection}, {"host", host}}},
                {"validate", false}};
  auto put = atproto::xrpc_procedure(account.pds, "com.atproto.repo.putRecord", input, session.access_jwt);
  if (!put.ok()) return error("could not write the record: " + put.error().message);
  std::string uri = discovery_record_uri(account.did);
  if (auto u = put->find("uri"); u != put->end() && u->is_string()) uri = printable(u->get<std::string>(), 300);
  return uri;
}

Result<std::optional<std::string>> get_discovery_record(const std::string& pds, const std::string& did) {
  atproto::XrpcFailure failure;
  auto record = atproto::xrpc_query(pds, "com.atproto.repo.getRecord",
                                    {{"repo", did}, {"collection", kCollection}, {"rkey", did}}, {}, &failure);
  if (!record.ok()) {
    if (failure.error == "RecordNotFound") return std::optional<std::string>();
    return error(ErrorCode::kIo,
                 "could not read " + discovery_record_uri(did) + " from " + pds + ": " + record.error().message);
  }
  const json* value = record->contains("value") ? &(*record)["value"] : nullptr;
  if (!value || !value->is_object() || !value->contains("host") || !(*value)["host"].is_string()) {
    return error(ErrorCode::kInvalid, discovery_record_uri(did) + " has no host string");
  }
  return std::optional<std::string>((*value)["host"].get<std::string>());
}

namespace {

// --- publish / unpublish ------------------------------------------------------------------

int publish(const AtprotoOptions& opts) {
  auto fail = [](const std::string& message) {
    std::cerr << "groundmist-sync publish: " << message << "\n";
    return 1;
  };
  auto host = validate_sync_host(opts.host);
  if (!host.ok()) return fail("--host: " + host.error().message);
  if (host->find(':') != std::string::npos && !is_development_host(*host)) {
    std::cerr << "groundmist-sync publish: warning: apps will reach " << host_origin(*host)
              << ", but a did:web cannot carry a port except for localhost, so service-auth tokens for it "
                 "cannot be minted; serve on port 443 behind TLS for that\n";
  }
  const server::Environment env = load_environment("publish");
  auto account = find_account(opts, env);
  if (!account.ok()) return fail(account.error().message);
  std::cerr << "groundmist-sync publish: " << account->did << " on the PDS at " << account->pds << "\n";
  auto password = read_password(env, account->identifier);
  if (!password.ok()) return fail(password.error().message);
  auto session = log_in(*account, *password);
  if (!session.ok()) return fail(session.error().message);
  auto uri = put_discovery_record(*account, *session, *host);
  log_out(*account, *session);
  if (!uri.ok()) return fail(uri.error().message);
  std::cout << "published host " << *host << " at " << *uri << "\n";
  return 0;
}

int unpublish(const AtprotoOptions& opts) {
  auto fail = [](const std::string& message) {
    std::cerr << "groundmist-sync unpublish: " << message << "\n";
    return 1;
  };
  const server::Environment env = load_environment("unpublish");
  auto account = find_account(opts, env);
  if (!account.ok()) return fail(account.error().message);
  std::cerr << "groundmist-sync unpublish: " << account->did << " on the PDS at " << account->pds << "\n";
  auto password = read_password(env, account->identifier);
  if (!password.ok()) return fail(password.error().message);
  auto session = log_in(*account, *password);
  if (!session.ok()) return fail(session.error().message);
  json input = {{"repo", account->did}, {"collection", kCollection}, {"rkey", account->did}};
  auto deleted = atproto::xrpc_procedure(account->pds, "com.atproto.repo.deleteRecord", input, session->access_jwt);
  log_out(*account, *session);
  if (!deleted.ok()) return fail("could not delete the record: " + deleted.error().message);
  std::cout << "removed " << discovery_record_uri(account->did) << "\n";
  return 0;
}

// --- resolve ------------------------------------------------------------------------------

struct Report {
  std::optional<std::string> did, handle, pds, host;
  bool healthz = false;
  bool did_document = false;
  std::vector<std::string> problems;
  std::vector<std::pair<std::string, std::string>> lines;  // step, what it found

  void ok(const std::string& step, const std::string& what) { lines.emplace_back(step, what); }
  void failed(const std::string& step, const std::string& problem) {
    lines.emplace_back(step, "FAILED: " + problem);
    problems.push_back(problem);
  }
  void skipped(const std::string& step) { lines.emplace_back(step, "skipped"); }
};

void check_healthz(const std::string& host, Report& r) {
  const std::string url = host_origin(host) + "/healthz";
  atproto::HttpOptions options;
  options.max_response_bytes = 64 << 10;
  auto answer = atproto::http_get(url, options);
  if (!answer.ok()) {
    r.failed("healthz", answer.error().message + ": is `groundmist-sync serve` running and reachable at " +
                            host_origin(host) + " (with TLS in front of it for a public host)?");
  } else if (answer->status != 200) {
    r.failed("healthz", url + " answered HTTP " + std::to_string(answer->status) +
                            ": is it a Groundmist Sync server? Check the published host");
  } else {
    r.healthz = true;
    r.ok("healthz", "ok (" + url + ")");
  }
}

void check_did_document(const std::string& host, Report& r) {
  const DidJsonCheck c = check_did_json(host, host_origin(host), atproto::HttpOptions{});
  if (!c.ok) return r.failed("did.json", c.fix.empty() ? c.verdict : c.verdict + ": " + c.fix);
  r.did_document = true;
  r.ok("did.json", c.verdict);
}

void run_resolve(const AtprotoOptions& opts, Report& r) {
  const server::Environment env = load_environment("resolve");
  const std::string plc = plc_url(opts, env);
  const std::string subject(trim(opts.subject));

  // 1. The DID.
  std::optional<std::string> input_handle;
  if (subject.starts_with("did:")) {
    if (!atproto::is_atproto_did(subject)) {
      r.failed("DID", "\"" + subject + "\" is not an atproto DID (did:plc:... or did:web:...)");
      return;
    }
    r.did = subject;
  } else {
    input_handle = lower(subject);
    if (!atproto::is_handle_syntax(*input_handle)) {
      r.failed("DID", "\"" + subject + "\" is neither a handle (alice.example.com) nor a DID (did:plc:...)");
      return;
    }
    auto did = handle_to_did(*input_handle, opts.pds);
    if (!did.ok()) {
      r.failed("DID", did.error().message);
      return;
    }
    r.did = *did;
  }
  r.ok("DID", *r.did);

  // 2. Its document: handle and PDS.
  atproto::DidResolver resolver(plc);
  auto doc = resolver.resolve(*r.did);
  if (!doc.ok()) {
    if (atproto::is_did_not_found(doc.error())) {
      r.failed("DID doc", doc.error().message + ": check the DID (PLC directory: " + plc + ", --plc-url or PLC_URL)");
    } else {
      r.failed("DID doc", doc.error().message + ": is the PLC directory " + plc + " reachable (--plc-url or PLC_URL)?");
    }
  } else {
    r.handle = doc->handle;
    if (!doc->handle) {
      r.ok("handle", "(none in the DID document)");
    } else if (input_handle && *doc->handle != *input_handle) {
      r.failed("handle", "the DID document of " + *r.did + " claims the handle " + *doc->handle + ", not " +
                             *input_handle + ": the handle does not verify both ways; update it in your account");
    } else {
      r.ok("handle", *doc->handle);
    }
  }
  if (!opts.pds.empty()) {
    r.pds = opts.pds;
    r.ok("PDS", opts.pds + " (--pds)");
  } else if (doc.ok() && !doc->pds_endpoint.empty()) {
    r.pds = doc->pds_endpoint;
    r.ok("PDS", doc->pds_endpoint);
  } else {
    if (doc.ok())
      r.failed("PDS", "the DID document of " + *r.did + " names no PDS (#atproto_pds service)");
    else
      r.skipped("PDS");
    r.skipped("host");
    r.skipped("healthz");
    r.skipped("did.json");
    return;
  }

  // 3. The published host.
  const std::string publish_hint =
      "run `groundmist-sync publish --host <your server's host name> --did " + *r.did + "`";
  std::optional<std::string> host;
  auto record = get_discovery_record(*r.pds, *r.did);
  if (!record.ok()) {
    r.failed("host", record.error().message + (record.error().code == ErrorCode::kInvalid ? ": " + publish_hint : ""));
  } else if (!*record) {
    r.failed("host", "no " + std::string(kCollection) + " record in " + *r.did + "'s repository: " + publish_hint);
  } else {
    const std::string published = **record;
    r.host = published;
    auto valid = validate_sync_host(published);
    if (!valid.ok()) {
      r.failed("host", "the published host \"" + published + "\" is not usable: " + valid.error().message + "; " +
                           publish_hint);
    } else {
      host = *valid;
      r.ok("host", published);
    }
  }
  if (!host) {
    r.skipped("healthz");
    r.skipped("did.json");
    return;
  }

  // 4. The server itself, as apps will reach it.
  check_healthz(*host, r);
  check_did_document(*host, r);
}

int resolve(const AtprotoOptions& opts) {
  Report r;
  run_resolve(opts, r);
  if (opts.json) {
    auto or_null = [](const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); };
    json out = {{"did", or_null(r.did)},   {"handle", or_null(r.handle)}, {"pds", or_null(r.pds)},
                {"host", or_null(r.host)}, {"healthz", r.healthz},        {"didDocument", r.did_document},
                {"problems", r.problems}};
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    for (const auto& [step, what] : r.lines) {
      std::string padded = step;
      padded.resize(10, ' ');
      // Lines quote what servers sent (ids, hosts, error messages): no terminal escapes.
      std::cout << padded << printable(what, 2000) << "\n";
    }
    if (!r.problems.empty()) {
      std::cerr << "groundmist-sync resolve: " << r.problems.size()
                << (r.problems.size() == 1 ? " step failed" : " steps failed") << "\n";
    }
  }
  return r.problems.empty() ? 0 : 1;
}

}  // namespace

DidJsonCheck check_did_json(const std::string& host, const std::string& origin, atproto::HttpOptions options) {
  const std::string url = origin + "/.well-known/did.json";
  const std::string expected_id = atproto::service_did(host);
  const std::string configured =
      "the server answering there is configured for another host name: set GROUNDMIST_SYNC_HOST (or "
      "--public-host) to " +
      host + " and restart it";
  options.max_response_bytes = atproto::kMaxDidDocumentBytes;
  auto answer = atproto::http_get(url, options);
  if (!answer.ok()) {
    return {false, answer.error().message,
            "is `groundmist-sync serve` running and reachable at " + origin +
                " (with TLS in front of it for a public host)?"};
  }
  if (answer->status != 200) {
    return {false, url + " answered HTTP " + std::to_string(answer->status),
            "the server does not serve its did:web document; upgrade it, or check that the proxy in front of it "
            "passes /.well-known/"};
  }
  auto doc = json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return {false, url + " is not a JSON object", "is it a Groundmist Sync server? Check the host name"};
  }
  const auto id = doc.find("id");
  if (id == doc.end() || !id->is_string() || lower(id->get<std::string>()) != lower(expected_id)) {
    const std::string found = id != doc.end() && id->is_string() ? printable(id->get<std::string>(), 200) : "(none)";
    return {false, url + " has id " + found + ", not " + expected_id, configured};
  }
  const json* service = nullptr;
  if (auto services = doc.find("service"); services != doc.end() && services->is_array()) {
    for (const json& s : *services) {
      if (!s.is_object() || !s.contains("id") || !s["id"].is_string()) continue;
      const std::string sid = s["id"].get<std::string>();
      if (sid == atproto::kServiceFragment ||
          lower(sid) == lower(expected_id + std::string(atproto::kServiceFragment))) {
        service = &s;
        break;
      }
    }
  }
  if (!service) {
    return {false, url + " has no " + std::string(atproto::kServiceFragment) + " service",
            "apps cannot address service-auth tokens to it; upgrade the server"};
  }
  // The endpoint the server names for itself: what apps would be sent to. It must be
  // there, and a string (review: a missing or non-string one passed unchecked).
  auto endpoint = service->find("serviceEndpoint");
  if (endpoint == service->end() || !endpoint->is_string()) {
    return {false, "its " + std::string(atproto::kServiceFragment) + " service has no serviceEndpoint URL",
            "apps would not know where to send their requests; upgrade the server"};
  }
  std::string e = endpoint->get<std::string>();
  while (!e.empty() && e.back() == '/') e.pop_back();
  if (lower(e) != host_origin(host)) {
    return {false,
            "its " + std::string(atproto::kServiceFragment) + " service points to " + printable(e, 200) + ", not " +
                host_origin(host),
            configured};
  }
  return {true, "ok (" + expected_id + std::string(atproto::kServiceFragment) + ")", ""};
}

bool is_development_host(std::string_view host) {
  std::string_view name = host.substr(0, host.find(':'));
  return name == "localhost" || name == "127.0.0.1";
}

std::string host_origin(const std::string& host) { return (is_development_host(host) ? "http://" : "https://") + host; }

Result<std::string> validate_sync_host(std::string_view input) {
  const std::string host = lower(trim(input));
  if (host.empty()) return error("empty: give the server's host name, e.g. sync.example.com");
  if (size_t scheme = host.find("://"); scheme != std::string::npos) {
    std::string rest = host.substr(scheme + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    return error("give the host name without a scheme: \"" + rest + "\", not \"" + std::string(trim(input)) + "\"");
  }
  if (host.find_first_of("/?#") != std::string::npos) {
    return error("\"" + host + "\" has a path: give only the host name (and :port), e.g. sync.example.com");
  }
  if (host.find('@') != std::string::npos) return error("\"" + host + "\" has a user@ part: give only the host name");
  std::string_view name = host;
  if (size_t colon = host.find(':'); colon != std::string::npos) {
    name = std::string_view(host).substr(0, colon);
    std::string_view port = std::string_view(host).substr(colon + 1);
    const bool digits = !port.empty() && port.size() <= 5 &&
                        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535) {
      return error("\"" + host + "\": the port must be a number from 1 to 65535 (IPv6 addresses are not supported)");
    }
  }
  bool valid = !name.empty() && name.size() <= 253;
  for (size_t start = 0; valid;) {
    size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    valid = !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
            std::all_of(label.begin(), label.end(), [](unsigned char c) { return std::isalnum(c) || c == '-'; });
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (!valid)
    return error("\"" + host + "\" is not a host name (letters, digits, '-' and dots, e.g. sync.example.com)");
  return host;
}

void add_atproto_commands(CLI::App& app, AtprotoOptions& opts) {
  auto account_flags = [&opts](CLI::App* cmd) {
    CLI::Option* handle = cmd->add_option("--handle", opts.handle, "Your atproto handle, e.g. alice.bsky.social");
    CLI::Option* did = cmd->add_option("--did", opts.did, "Your DID, e.g. did:plc:...");
    handle->excludes(did);
    cmd->add_option("--pds", opts.pds, "Your PDS, e.g. https://bsky.social (default: from your DID document)");
    cmd->add_option("--plc-url", opts.plc_url, "PLC directory (env PLC_URL, default https://plc.directory)");
  };

  CLI::App* publish_cmd =
      app.add_subcommand("publish", "Publish this server's host name in your PDS, where your apps look for it");
  publish_cmd->add_option("--host", opts.host, "The server's host name as apps reach it, e.g. sync.example.com")
      ->required();
  account_flags(publish_cmd);
  publish_cmd->callback([&opts] { opts.exit_code = publish(opts); });

  CLI::App* unpublish_cmd = app.add_subcommand("unpublish", "Remove the published host name from your PDS");
  account_flags(unpublish_cmd);
  unpublish_cmd->callback([&opts] { opts.exit_code = unpublish(opts); });

  CLI::App* resolve_cmd =
      app.add_subcommand("resolve", "Follow the discovery chain an app follows, and say what is missing");
  resolve_cmd->add_option("subject", opts.subject, "A handle or a DID")->required();
  resolve_cmd->add_option("--pds", opts.pds, "Ask this PDS (default: the one the DID document names)");
  resolve_cmd->add_option("--plc-url", opts.plc_url, "PLC directory (env PLC_URL, default https://plc.directory)");
  resolve_cmd->add_flag("--json", opts.json, "Print one JSON object");
  resolve_cmd->callback([&opts] { opts.exit_code = resolve(opts); });
}

}  // namespace gm::cli
