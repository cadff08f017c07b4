#include "cli/token_command.h"

#include <cerrno>
#include <cstdlib>
#include <iostream>

namespace gm::cli {

Result<int64_t> parse_duration_seconds(std::string_view text) {
  if (text.empty()) return error("empty duration (use e.g. 90s, 30m, 12h, 7d)");
  int64_t unit = 1;
  std::string_view number = text;
  switch (text.back()) {
    case 's': unit = 1; number.remove_suffix(1); break;
    case 'm': unit = 60; number.remove_suffix(1); break;
    case 'h': unit = 3600; number.remove_suffix(1); break;
    case 'd': unit = 86400; number.remove_suffix(1); break;
    default: break;
  }
  int64_t value = 0;
  if (number.empty()) return error("duration \"" + std::string(text) + "\" has no number (use e.g. 90s, 30m, 12h, 7d)");
  for (char c : number) {
    if (c < '0' || c > '9') return error("duration \"" + std::string(text) + "\" is not a number with s, m, h or d");
    if (value > (int64_t{1} << 40)) return error("duration \"" + std::string(text) + "\" is too long");
    value = value * 10 + (c - '0');
  }
  if (value == 0) return error("duration \"" + std::string(text) + "\" is zero");
  return value * unit;
}

Result<server::TokenVerifier> make_session_verifier(const server::ServerConfig&) {
  // Placeholder until the auth part's session tokens land: refuse every token.
  return server::TokenVerifier([](std::string_view) -> Result<server::PeerIdentity> {
    return error("session tokens are not available in this build yet");
  });
}

namespace {

int mint(const TokenOptions& opts) {
  auto ttl = parse_duration_seconds(opts.ttl);
  if (!ttl.ok()) {
    std::cerr << "groundmist-sync token: --ttl: " << ttl.error().message << "\n";
    return 1;
  }
  std::cerr << "groundmist-sync token: session tokens are not available in this build yet\n";
  return 1;
}

}  // namespace

void add_token_command(CLI::App& app, TokenOptions& opts) {
  CLI::App* cmd = app.add_subcommand("token", "Mint a session token for one lexicon group and print it");
  cmd->add_option("--group", opts.group, "Lexicon NSID group, e.g. xyz.groundmist.library")->required();
  cmd->add_option("--ttl", opts.ttl, "Lifetime: 90s, 30m, 12h (default), 7d");
  cmd->add_option("--data", opts.common.data_dir, "Data folder holding the secret (env DATA_DIR, default .data)");
  cmd->callback([&opts] { opts.exit_code = mint(opts); });
}

}  // namespace gm::cli
