#include "cli/doctor_report.h"

#include <gtest/gtest.h>

namespace gm::cli {
namespace {

std::vector<CheckResult> sample() {
  return {
      {"config", "config", CheckStatus::kOk, "/etc/g.conf: owner did:plc:x", ""},
      {"data_folder", "data folder", CheckStatus::kFail, "/var/lib/g is mode 0755", "chmod 700 /var/lib/g"},
      {"dns", "DNS", CheckStatus::kWarn, "a.example resolves to 10.0.0.2 only", "point it at a public address"},
      {"did_json", "did.json", CheckStatus::kSkip, "the host does not resolve (see DNS)", ""},
  };
}

TEST(DoctorReport, OneLineACheckAndAFixForEachThatIsNotOk) {
  EXPECT_EQ(format_text(sample()),
            "ok    config: /etc/g.conf: owner did:plc:x\n"
            "FAIL  data folder: /var/lib/g is mode 0755\n"
            "      fix: chmod 700 /var/lib/g\n"
            "warn  DNS: a.example resolves to 10.0.0.2 only\n"
            "      fix: point it at a public address\n"
            "skip  did.json: the host does not resolve (see DNS)\n"
            "1 ok, 1 warn, 1 FAIL, 1 skip\n");
}

TEST(DoctorReport, ExitStatusFailsOnlyOnFail) {
  auto checks = sample();
  EXPECT_EQ(exit_status(checks), 1);
  checks[1].status = CheckStatus::kWarn;
  EXPECT_EQ(exit_status(checks), 0);
  EXPECT_EQ(exit_status({}), 0);
}

TEST(DoctorReport, Json) {
  const nlohmann::json j = format_json(sample(), "/etc/g.conf");
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["config"], "/etc/g.conf");
  ASSERT_EQ(j["checks"].size(), 4u);
  EXPECT_EQ(j["checks"][1]["id"], "data_folder");
  EXPECT_EQ(j["checks"][1]["status"], "fail");
  EXPECT_EQ(j["checks"][1]["fix"], "chmod 700 /var/lib/g");
  EXPECT_TRUE(j["checks"][0]["fix"].is_null());
  EXPECT_EQ(j["checks"][3]["status"], "skip");
}

TEST(DoctorReport, WhatServersSaidCannotWriteToTheTerminal) {
  std::vector<CheckResult> checks = {
      {"did_json", "did.json", CheckStatus::kFail, "id \x1b[31mred\nfake line", "do \x07this"}};
  const std::string text = format_text(checks);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find('\x07'), std::string::npos);
  EXPECT_EQ(text, "FAIL  did.json: id ?[31mred?fake line\n      fix: do ?this\n1 FAIL\n");
  EXPECT_NO_THROW(format_json({{"x", "x", CheckStatus::kOk, "bad utf-8 \xff", ""}}, "").dump());
}

CertificateFacts good() {
  CertificateFacts f;
  f.where = "/tls/fullchain.pem";
  f.subject = "CN=sync.example.com";
  f.names = "DNS:sync.example.com";
  f.not_after = "Jun  1 12:00:00 2027 GMT";
  f.seconds_left = 60 * 86400;
  f.names_host = true;
  f.trusted = true;
  return f;
}

TEST(CertificateVerdict, GoodOne) {
  CheckResult r = certificate_verdict(good(), "sync.example.com", false, "renew it");
  EXPECT_EQ(r.status, CheckStatus::kOk);
  EXPECT_EQ(r.verdict,
            "/tls/fullchain.pem: CN=sync.example.com [DNS:sync.example.com], 60 days left (until Jun  1 "
            "12:00:00 2027 GMT)");
  EXPECT_TRUE(r.fix.empty());
}

TEST(CertificateVerdict, ExpiredFailsWithTheRenewal) {
  CertificateFacts f = good();
  f.seconds_left = -3 * 86400;
  CheckResult r = certificate_verdict(f, "sync.example.com", false, "certbot renew, then reload");
  EXPECT_EQ(r.status, CheckStatus::kFail);
  EXPECT_NE(r.verdict.find("expired 3 days ago"), std::string::npos) << r.verdict;
  EXPECT_EQ(r.fix, "certbot renew, then reload");
  // Expired is said before anything else, on a development host too.
  f.names_host = false;
  EXPECT_NE(certificate_verdict(f, "localhost:3031", true, "x").verdict.find("expired"), std::string::npos);
}

TEST(CertificateVerdict, UnderFourteenDaysWarns) {
  CertificateFacts f = good();
  f.seconds_left = kCertificateWarnSeconds - 1;
  EXPECT_EQ(certificate_verdict(f, "sync.example.com", false, "r").status, CheckStatus::kWarn);
  f.seconds_left = kCertificateWarnSeconds;
  EXPECT_EQ(certificate_verdict(f, "sync.example.com", false, "r").status, CheckStatus::kOk);
}

TEST(CertificateVerdict, OtherNamesFail) {
  CertificateFacts f = good();
  f.names_host = false;
  CheckResult r = certificate_verdict(f, "other.example.com", false, "r");
  EXPECT_EQ(r.status, CheckStatus::kFail);
  EXPECT_NE(r.verdict.find("is not for other.example.com"), std::string::npos) << r.verdict;
  EXPECT_NE(r.fix.find("other.example.com"), std::string::npos);
}

TEST(CertificateVerdict, UntrustedFailsForAPublicHostOnly) {
  CertificateFacts f = good();
  f.trusted = false;
  f.trust_problem = "self-signed certificate";
  CheckResult pub = certificate_verdict(f, "sync.example.com", false, "r");
  EXPECT_EQ(pub.status, CheckStatus::kFail);
  EXPECT_NE(pub.verdict.find("self-signed certificate"), std::string::npos);
  CheckResult dev = certificate_verdict(f, "localhost:3031", true, "r");
  EXPECT_EQ(dev.status, CheckStatus::kOk);
  EXPECT_NE(dev.verdict.find("fine for localhost"), std::string::npos) << dev.verdict;
}

TEST(RoughDuration, Units) {
  EXPECT_EQ(rough_duration(5), "5 seconds");
  EXPECT_EQ(rough_duration(1), "1 second");
  EXPECT_EQ(rough_duration(600), "10 minutes");
  EXPECT_EQ(rough_duration(3 * 3600), "3 hours");
  EXPECT_EQ(rough_duration(-3 * 86400), "3 days");
}

}  // namespace
}  // namespace gm::cli
