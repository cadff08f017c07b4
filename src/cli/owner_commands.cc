#include "cli/owner_commands.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "auth/authenticator.h"
#include "auth/session_token.h"
#include "auth/state_store.h"
#include "storage/group_registry.h"
#include "web/console_session.h"

namespace gm::cli {
namespace {

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

// Device codes as the owner may type them: "9j3u4yj8", "9J3U 4YJ8" → "9J3U-4YJ8".
std::string normalize_device_code(const std::string& typed) {
  std::string code;
  for (char c : typed) {
    if (std::isalnum(static_cast<unsigned char>(c))) code += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (code.size() == 8) code.insert(4, "-");
  return code;
}

// Grant ids likewise: "gabcd2345" → "GABCD-2345".
std::string normalize_grant_id(const std::string& typed) {
  std::string code = normalize_device_code(typed);
  if (code.size() == 9 && code[0] == 'G') code.insert(5, "-");
  return code;
}

std::string dump(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Runs `body` with the store of the configured data folder; errors go to stderr as
// "groundmist-sync <command>: …" and make the exit status 1.
int with_store(const char* command, const OwnerOptions& opts,
               const std::function<Status(auth::StateStore&, int64_t now)>& body) {
  auto fail = [command](const std::string& message) {
    std::cerr << "groundmist-sync " << command << ": " << message << "\n";
    return 1;
  };
  auto config = load_server_config(opts.common, ".env", /*read_port=*/false);
  if (!config.ok()) return fail(config.error().message);
  auto store = auth::StateStore::open_existing(config->data_dir);
  if (!store.ok()) return fail(store.error().message);
  if (Status s = body(**store, auth::unix_now()); !s.ok()) return fail(s.error().message);
  return 0;
}

Status list_sessions(auth::StateStore& store, int64_t now, const OwnerOptions& opts) {
  GM_ASSIGN_OR_RETURN(auto sessions, store.list_sessions(now, opts.expired));
  if (opts.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : sessions) {
      out.push_back({{"id", s.id},
                     {"group", s.group},
                     {"subject", s.subject},
                     {"kind", s.kind},
                     {"createdAt", auth::iso8601_utc(s.created_at)},
                     {"expiresAt", auth::iso8601_utc(s.expires_at)},
                     {"revoked", s.revoked_at.has_value()},
                     {"origin", s.origin},
                     {"userAgent", s.user_agent},
                     {"address", s.address},
                     {"device", s.device}});
    }
    std::cout << dump(out) << "\n";
    return Status::Ok();
  }
  if (sessions.empty()) std::cerr << "no sessions" << (opts.expired ? "" : " (--expired lists expired ones too)") << "\n";
  for (const auto& s : sessions) {
    std::cout << s.id << "  " << s.group << "  " << s.kind << "  " << (s.revoked_at ? "revoked" : "active")
              << "  created " << auth::iso8601_utc(s.created_at) << "  expires " << auth::iso8601_utc(s.expires_at) << "  origin "
              << or_dash(s.origin) << "  from " << or_dash(s.address) << (s.device.empty() ? "" : "  device ")
              << s.device << "\n";
  }
  return Status::Ok();
}

Status list_devices(auth::StateStore& store, const OwnerOptions& opts) {
  GM_ASSIGN_OR_RETURN(auto devices, store.list_devices());
  if (opts.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : devices) {
      out.push_back({{"code", d.code},
                     {"group", d.group},
                     {"status", auth::to_string(d.status)},
                     {"jkt", d.jkt},
                     {"origin", d.origin},
                     {"userAgent", d.user_agent},
                     {"address", d.address},
                     {"createdAt", auth::iso8601_utc(d.created_at)}});
    }
    std::cout << dump(out) << "\n";
    return Status::Ok();
  }
  if (devices.empty()) std::cerr << "no devices (they appear when an OAuth app logs in with --allow-oauth-dpop)\n";
  for (const auto& d : devices) {
    std::cout << d.code << "  " << auth::to_string(d.status) << "  " << d.group << "  origin " << or_dash(d.origin)
              << "  from " << or_dash(d.address) << "  since " << auth::iso8601_utc(d.created_at) << "  "
              << or_dash(d.user_agent) << "\n";
  }
  return Status::Ok();
}

std::string scope_list(const std::vector<auth::Scope>& scopes) {
  std::string out;
  for (const auth::Scope& s : scopes) out += (out.empty() ? "" : " ") + auth::to_string(s);
  return out;
}

Status list_grants(auth::StateStore& store, const OwnerOptions& opts) {
  GM_ASSIGN_OR_RETURN(auto grants, store.list_grants());
  if (opts.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& g : grants) {
      nlohmann::json scopes = nlohmann::json::array();
      for (const auto& s : g.scopes) {
        scopes.push_back({{"nsid", s.nsid}, {"access", s.access == auth::ScopeAccess::kWrite ? "write" : "read"}});
      }
      out.push_back({{"id", g.id},
                     {"subject", g.subject},
                     {"scopes", scopes},
                     {"status", auth::to_string(g.status)},
                     {"created", auth::iso8601_utc(g.created_at)},
                     {"expires", g.expires_at ? nlohmann::json(auth::iso8601_utc(*g.expires_at)) : nlohmann::json()},
                     {"decided", g.decided_at ? nlohmann::json(auth::iso8601_utc(*g.decided_at)) : nlohmann::json()},
                     {"origin", g.origin},
                     {"note", g.note}});
    }
    std::cout << dump(out) << "\n";
    return Status::Ok();
  }
  if (grants.empty()) std::cerr << "no grants (apps ask for scopes when they log in; `grants add` gives some)\n";
  for (const auto& g : grants) {
    std::cout << g.id << "  " << auth::to_string(g.status) << "  " << g.subject << "  " << scope_list(g.scopes)
              << "  since " << auth::iso8601_utc(g.created_at)
              << (g.expires_at ? "  expires " + auth::iso8601_utc(*g.expires_at) : std::string()) << "  "
              << or_dash(g.note) << "\n";
  }
  return Status::Ok();
}

// A grant's subject as logins and tokens name it: origin:<scheme>://<host>[:port],
// device:XXXX-XXXX (upper case, as `devices list` shows it), token:NAME.
Result<std::string> normalize_subject(const std::string& typed) {
  const std::string bad = "--subject must be origin:https://host[:port], device:CODE or token:NAME";
  const size_t colon = typed.find(':');
  if (colon == std::string::npos || typed.size() > 300) return error(bad);
  const std::string kind = typed.substr(0, colon), rest = typed.substr(colon + 1);
  const bool printable = !rest.empty() && std::all_of(rest.begin(), rest.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (!printable) return error(bad);
  if (kind == "device") return "device:" + normalize_device_code(rest);
  if (kind == "token") return typed;
  const bool origin = (rest.starts_with("https://") || rest.starts_with("http://")) &&
                      rest.find('/', rest.find("//") + 2) == std::string::npos;
  if (kind == "origin" && origin) return typed;
  return error(bad + " (an origin has no path: https://app.example)");
}

Result<std::vector<auth::Scope>> parse_scopes(const std::vector<std::string>& texts) {
  std::vector<auth::Scope> out;
  for (const std::string& t : texts) {
    GM_ASSIGN_OR_RETURN(auth::Scope s, auth::parse_scope(t));
    out.push_back(std::move(s));
  }
  if (out.empty()) return error("give at least one --scope NSID:read or NSID:write");
  return out;
}

}  // namespace

void add_owner_commands(CLI::App& app, OwnerOptions& opts) {
  auto data_flag = [&opts](CLI::App* cmd) {
    cmd->add_option("--data", opts.common.data_dir, "Data folder (env DATA_DIR, default .data)");
  };

  CLI::App* sessions = app.add_subcommand("sessions", "List or revoke the session tokens handed out");
  sessions->require_subcommand(1);
  CLI::App* list = sessions->add_subcommand("list", "Sessions, newest first");
  list->add_flag("--json", opts.json, "Machine-readable output");
  list->add_flag("--expired", opts.expired, "Include expired sessions");
  data_flag(list);
  list->callback([&opts] {
    opts.exit_code = with_store("sessions list", opts, [&](auth::StateStore& s, int64_t now) {
      return list_sessions(s, now, opts);
    });
  });
  CLI::App* revoke = sessions->add_subcommand("revoke", "Refuse a session from now on and close its sockets");
  revoke->add_option("id", opts.id, "Session id (from `sessions list`)");
  revoke->add_flag("--all", opts.all, "Every session handed out until now, listed or not");
  data_flag(revoke);
  revoke->callback([&opts] {
    if (opts.all == !opts.id.empty()) {
      std::cerr << "groundmist-sync sessions revoke: give a session id or --all\n";
      opts.exit_code = 1;
      return;
    }
    opts.exit_code = with_store("sessions revoke", opts, [&](auth::StateStore& s, int64_t now) -> Status {
      if (opts.all) {
        GM_TRY(s.revoke_all_sessions(now));
        std::cout << "revoked every session issued until " << auth::iso8601_utc(now) << "\n";
        return Status::Ok();
      }
      GM_ASSIGN_OR_RETURN(bool found, s.revoke_session(opts.id, now));
      if (!found) return error("no session " + opts.id + " (see `groundmist-sync sessions list --expired`)");
      std::cout << "revoked session " << opts.id << "\n";
      return Status::Ok();
    });
  });

  CLI::App* devices = app.add_subcommand("devices", "Approve or revoke the devices of OAuth (DPoP) apps");
  devices->require_subcommand(1);
  CLI::App* dlist = devices->add_subcommand("list", "Devices: pending, approved, revoked");
  dlist->add_flag("--json", opts.json, "Machine-readable output");
  data_flag(dlist);
  dlist->callback([&opts] {
    opts.exit_code = with_store("devices list", opts, [&](auth::StateStore& s, int64_t) { return list_devices(s, opts); });
  });
  for (auto [name, status, help] :
       {std::tuple{"approve", auth::DeviceStatus::approved, "Let a pending device log in (its CODE from the log or `devices list`)"},
        std::tuple{"revoke", auth::DeviceStatus::revoked, "Refuse a device again and close its sessions"}}) {
    CLI::App* cmd = devices->add_subcommand(name, help);
    cmd->add_option("code", opts.id, "Device code, e.g. 7QK2-M9XD")->required();
    data_flag(cmd);
    cmd->callback([&opts, name = std::string(name), status = status] {
      opts.exit_code = with_store(("devices " + name).c_str(), opts, [&](auth::StateStore& s, int64_t now) -> Status {
        const std::string code = normalize_device_code(opts.id);
        GM_ASSIGN_OR_RETURN(bool found, s.set_device_status(code, status, now));
        if (!found) return error("no device " + code + " (see `groundmist-sync devices list`)");
        std::cout << "device " << code << ": " << auth::to_string(status) << "\n";
        return Status::Ok();
      });
    });
  }

  CLI::App* grants = app.add_subcommand("grants", "Let apps, tools and agents reach other groups (scopes)");
  grants->require_subcommand(1);
  CLI::App* glist = grants->add_subcommand("list", "Grants and scope requests, newest first");
  glist->add_flag("--json", opts.json, "Machine-readable output");
  data_flag(glist);
  glist->callback([&opts] {
    opts.exit_code = with_store("grants list", opts, [&](auth::StateStore& s, int64_t) { return list_grants(s, opts); });
  });
  for (auto [name, status, help] :
       {std::tuple{"approve", auth::GrantStatus::approved, "Grant a pending scope request (its ID from `grants list`)"},
        std::tuple{"refuse", auth::GrantStatus::refused, "Refuse a pending scope request"},
        std::tuple{"revoke", auth::GrantStatus::revoked,
                   "Withdraw a grant: every token that used it loses its scopes, and their sockets close"}}) {
    CLI::App* cmd = grants->add_subcommand(name, help);
    cmd->add_option("id", opts.id, "Grant id, e.g. G7QK2-M9XD")->required();
    data_flag(cmd);
    cmd->callback([&opts, name = std::string(name), status = status] {
      opts.exit_code = with_store(("grants " + name).c_str(), opts, [&](auth::StateStore& s, int64_t now) -> Status {
        const std::string id = normalize_grant_id(opts.id);
        GM_ASSIGN_OR_RETURN(bool found, s.set_grant_status(id, status, now));
        if (!found) return error("no grant " + id + " (see `groundmist-sync grants list`)");
        std::cout << "grant " << id << ": " << auth::to_string(status) << "\n";
        return Status::Ok();
      });
    });
  }
  CLI::App* gadd = grants->add_subcommand("add", "Grant scopes to a subject without waiting for its request");
  gadd->add_option("--subject", opts.subject,
                   "Who: origin:https://app.example, device:CODE, or token:NAME (for `token --name NAME`)")
      ->required();
  gadd->add_option("--scope", opts.scopes, "NSID:read or NSID:write (repeatable); a prefix covers the groups below it")
      ->required();
  gadd->add_option("--ttl", opts.ttl, "Lifetime: 15m, 12h, 30d, 2w (default: until revoked)");
  data_flag(gadd);
  gadd->callback([&opts] {
    opts.exit_code = with_store("grants add", opts, [&](auth::StateStore& s, int64_t now) -> Status {
      auth::GrantRecord g;
      GM_ASSIGN_OR_RETURN(g.subject, normalize_subject(opts.subject));
      GM_ASSIGN_OR_RETURN(g.scopes, parse_scopes(opts.scopes));
      g.status = auth::GrantStatus::approved;
      g.created_at = now;
      g.decided_at = now;
      if (!opts.ttl.empty()) {
        GM_ASSIGN_OR_RETURN(int64_t ttl, auth::parse_duration(opts.ttl));
        g.expires_at = now + ttl;
      }
      g.note = "added by the owner";
      GM_ASSIGN_OR_RETURN(auth::GrantRecord added, s.add_grant(g));
      std::cout << "grant " << added.id << ": " << added.subject << " " << scope_list(added.scopes) << "\n";
      return Status::Ok();
    });
  });

  CLI::App* root = app.add_subcommand("root", "Show or set a group's root document (rootDocUrl)");
  root->add_option("group", opts.group, "Lexicon NSID group, e.g. xyz.groundmist.library")->required();
  root->add_option("url", opts.url, "automerge:<document id> to set (replaces what apps gave)");
  data_flag(root);
  root->callback([&opts] {
    opts.exit_code = with_store("root", opts, [&](auth::StateStore& s, int64_t now) -> Status {
      if (Status v = storage::validate_group_name(opts.group); !v.ok()) return context("GROUP", v.error());
      if (!opts.url.empty()) {
        if (Status v = auth::validate_automerge_url(opts.url); !v.ok()) return context("URL", v.error());
        GM_TRY(s.set_root_doc(opts.group, opts.url, now));
      }
      GM_ASSIGN_OR_RETURN(auto url, s.root_doc(opts.group));
      if (url) {
        std::cout << *url << "\n";
      } else {
        std::cerr << "no root document for " << opts.group << " yet (the first app to authenticate sets it)\n";
      }
      return Status::Ok();
    });
  });

  CLI::App* link = app.add_subcommand("console-link", "Print a link that logs a browser in to the console, once, within 10 minutes");
  link->add_option("--url", opts.url, "The origin the browser reaches the server at (default: https://<public host>, else the local address)");
  data_flag(link);
  link->callback([&opts] {
    auto config = load_server_config(opts.common, ".env", /*read_port=*/true);
    if (!config.ok()) {
      std::cerr << "groundmist-sync console-link: " << config.error().message << "\n";
      opts.exit_code = 1;
      return;
    }
    std::string origin = opts.url;
    if (origin.empty() && !config->public_host.empty()) origin = auth::public_origin(config->public_host);
    if (origin.empty()) {
      origin = (config->tls_cert_file.empty() ? "http://127.0.0.1:" : "https://127.0.0.1:") + std::to_string(config->port);
    }
    while (!origin.empty() && origin.back() == '/') origin.pop_back();
    opts.exit_code = with_store("console-link", opts, [&](auth::StateStore& s, int64_t now) -> Status {
      GM_ASSIGN_OR_RETURN(std::string code, web::new_link_code());
      GM_TRY(s.add_console_link(web::link_code_hash(code), now + web::kConsoleLinkSeconds, now));
      std::cout << origin << "/console/login#code=" << code << "\n";
      std::cerr << "Open it within 10 minutes; it works once. (The code never reaches the server's logs: it is in the "
                   "part of the address after '#'.)\n";
      return Status::Ok();
    });
  });
}

}  // namespace gm::cli
