// What `groundmist-sync doctor` found, and how it is printed (cli/doctor_command.h).
//
// Text, one check a line, then a fix line for each check that is not ok:
//   ok    config: /etc/groundmist-sync/groundmist-sync.conf: owner did:plc:…, host sync.example.com
//   FAIL  data folder: /var/lib/groundmist-sync is mode 0755: other users can list and open it
//         fix: chmod 700 /var/lib/groundmist-sync
//   skip  did.json: the host does not resolve (see DNS)
//   6 ok, 1 FAIL
// The status is padded to six columns; `skip` is for a check that could not run because
// one before it failed (that one carries the fix). Everything quoted from elsewhere
// (server answers, file names) goes through printable(): no terminal escapes.
//
// JSON (--json), one object:
//   {"ok": bool, "config": "<file read>",
//    "checks": [{"id": "data_folder", "name": "data folder", "status": "ok"|"warn"|"fail"|"skip",
//                "verdict": "...", "fix": "..." | null}, ...]}
// Exit status: 1 when any check failed, else 0 (warnings do not fail).
//
// The certificate verdict is decided here too, from facts gathered elsewhere, so that the
// thresholds are tested without clocks or files.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gm::cli {

enum class CheckStatus { kOk, kWarn, kFail, kSkip };

struct CheckResult {
  std::string id;    // "data_folder": stable, for --json
  std::string name;  // "data folder": for people
  CheckStatus status = CheckStatus::kOk;
  std::string verdict;
  std::string fix;  // empty when there is nothing to do
};

std::string_view status_word(CheckStatus status);  // "ok", "warn", "FAIL", "skip"

std::string format_text(const std::vector<CheckResult>& checks);
nlohmann::json format_json(const std::vector<CheckResult>& checks, const std::string& config_file);
int exit_status(const std::vector<CheckResult>& checks);

// A certificate as `doctor` saw it: from the files the server serves, or from the
// handshake with the public host.
struct CertificateFacts {
  std::string where;          // "/etc/…/fullchain.pem" or "https://sync.example.com"
  std::string subject;        // "CN=sync.example.com"
  std::string names;          // "DNS:sync.example.com, IP Address:127.0.0.1"
  std::string not_after;      // "Jun  1 12:00:00 2026 GMT"
  int64_t seconds_left = 0;   // negative once expired
  bool names_host = false;    // a name in it matches the host apps use
  bool trusted = false;       // its chain verifies against the system's certificate authorities
  std::string trust_problem;  // why not ("self-signed certificate", …)
};

inline constexpr int64_t kCertificateWarnSeconds = 14 * 24 * 3600;

// The TLS check's verdict: expired or naming another host fails; a certificate the
// system does not trust fails for a public host (apps will refuse it) and is fine for a
// development host (localhost: the owner's own test certificate); under 14 days left
// warns. `renew` is what renews it where it comes from (certbot, the proxy).
CheckResult certificate_verdict(const CertificateFacts& facts, const std::string& host, bool development_host,
                                const std::string& renew);

// "3 days", "5 hours", "40 minutes": how long until (or since) something, roughly.
std::string rough_duration(int64_t seconds);

}  // namespace gm::cli
