#include "cli/doctor_report.h"

#include <algorithm>

#include "util/text.h"

namespace gm::cli {
namespace {

// Verdicts quote servers and files: long, but bounded.
constexpr size_t kMaxLineBytes = 2000;

}  // namespace

std::string_view status_word(CheckStatus status) {
  switch (status) {
    case CheckStatus::kOk:
      return "ok";
    case CheckStatus::kWarn:
      return "warn";
    case CheckStatus::kFail:
      return "FAIL";
    case CheckStatus::kSkip:
      return "skip";
  }
  return "?";
}

std::string format_text(const std::vector<CheckResult>& checks) {
  std::string out;
  size_t counts[4] = {0, 0, 0, 0};
  for (const CheckResult& c : checks) {
    ++counts[static_cast<int>(c.status)];
    std::string word(status_word(c.status));
    word.resize(6, ' ');
    out += word + printable(c.name + ": " + c.verdict, kMaxLineBytes) + "\n";
    if (c.status != CheckStatus::kOk && !c.fix.empty()) out += "      fix: " + printable(c.fix, kMaxLineBytes) + "\n";
  }
  std::string summary;
  for (CheckStatus s : {CheckStatus::kOk, CheckStatus::kWarn, CheckStatus::kFail, CheckStatus::kSkip}) {
    if (counts[static_cast<int>(s)] == 0) continue;
    if (!summary.empty()) summary += ", ";
    summary += std::to_string(counts[static_cast<int>(s)]) + " " + std::string(status_word(s));
  }
  return out + (summary.empty() ? "no checks" : summary) + "\n";
}

nlohmann::json format_json(const std::vector<CheckResult>& checks, const std::string& config_file) {
  nlohmann::json list = nlohmann::json::array();
  for (const CheckResult& c : checks) {
    std::string status(status_word(c.status));
    std::transform(status.begin(), status.end(), status.begin(), [](unsigned char ch) { return std::tolower(ch); });
    list.push_back(
        {{"id", c.id},
         {"name", c.name},
         {"status", status},
         {"verdict", printable(c.verdict, kMaxLineBytes)},
         {"fix", c.fix.empty() ? nlohmann::json(nullptr) : nlohmann::json(printable(c.fix, kMaxLineBytes))}});
  }
  return {{"ok", exit_status(checks) == 0}, {"config", printable(config_file, 1000)}, {"checks", std::move(list)}};
}

int exit_status(const std::vector<CheckResult>& checks) {
  return std::any_of(checks.begin(), checks.end(), [](const CheckResult& c) { return c.status == CheckStatus::kFail; })
             ? 1
             : 0;
}

std::string rough_duration(int64_t seconds) {
  if (seconds < 0) seconds = -seconds;
  auto unit = [](int64_t n, const char* one) { return std::to_string(n) + " " + one + (n == 1 ? "" : "s"); };
  if (seconds >= 2 * 86400) return unit(seconds / 86400, "day");
  if (seconds >= 2 * 3600) return unit(seconds / 3600, "hour");
  if (seconds >= 120) return unit(seconds / 60, "minute");
  return unit(seconds, "second");
}

CheckResult certificate_verdict(const CertificateFacts& f, const std::string& host, bool development_host,
                                const std::string& renew) {
  CheckResult r{"tls", "TLS", CheckStatus::kOk, "", ""};
  const std::string name = host.substr(0, host.find(':'));
  const std::string shown = f.where + ": " + (f.subject.empty() ? std::string("(no subject)") : f.subject) +
                            (f.names.empty() ? "" : " [" + f.names + "]");
  if (f.seconds_left < 0) {
    r.status = CheckStatus::kFail;
    r.verdict = shown + " expired " + rough_duration(f.seconds_left) + " ago (" + f.not_after + "): apps refuse it";
    r.fix = renew;
    return r;
  }
  if (!f.names_host) {
    r.status = CheckStatus::kFail;
    r.verdict = shown + " is not for " + name + ": apps refuse it";
    r.fix = "get a certificate whose names include " + name + " (certbot certonly -d " + name +
            "), or set GROUNDMIST_SYNC_HOST to a name it has";
    return r;
  }
  if (!f.trusted && !development_host) {
    r.status = CheckStatus::kFail;
    r.verdict =
        shown + " is not signed by an authority this system trusts (" + f.trust_problem + "): apps will refuse it";
    r.fix =
        "use a certificate from a public authority such as Let's Encrypt, with its chain in the file "
        "(fullchain.pem, not cert.pem), or put Caddy in front (docs/deploy.md)";
    return r;
  }
  const std::string left = rough_duration(f.seconds_left) + " left (until " + f.not_after + ")";
  if (f.seconds_left < kCertificateWarnSeconds) {
    r.status = CheckStatus::kWarn;
    r.verdict = shown + " expires soon: " + left;
    r.fix = renew;
    return r;
  }
  r.verdict = shown + ", " + left;
  if (!f.trusted) r.verdict += "; not signed by a public authority (" + f.trust_problem + "), fine for " + name;
  return r;
}

}  // namespace gm::cli
