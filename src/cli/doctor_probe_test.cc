// doctor's network steps against small servers on 127.0.0.1 made here: a TLS server
// with a self-signed certificate (the proxy path's certificate probe), a port nothing
// listens on, a server that never answers, an HTTP server that refuses the upgrade.
// The full round trip against the real server is tests/e2e/doctor.test.mjs.
#include "cli/doctor_probe.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "server/tls.h"

namespace gm::cli {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A self-signed P-256 certificate for `san` valid `days`, written as cert.pem / key.pem in `dir`.
void make_certificate(const fs::path& dir, const char* san, long days) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24 * days);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san);
  ASSERT_NE(ext, nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
  FILE* c = std::fopen((dir / "cert.pem").c_str(), "w");
  PEM_write_X509(c, cert);
  std::fclose(c);
  FILE* k = std::fopen((dir / "key.pem").c_str(), "w");
  PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(k);
  X509_free(cert);
  EVP_PKEY_free(key);
}

class DoctorProbe : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gm-doctor-probe-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    stop_ = true;
    if (server_.joinable()) server_.join();
    fs::remove_all(dir_);
  }

  // Listens on 127.0.0.1 and gives each of `connections` connections to `serve`.
  template <class Serve>
  uint16_t listen(int connections, Serve serve) {
    acceptor_ = std::make_unique<tcp::acceptor>(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const uint16_t port = acceptor_->local_endpoint().port();
    server_ = std::thread([this, connections, serve] {
      for (int i = 0; i < connections; ++i) {
        tcp::socket socket(io_);
        boost::system::error_code ec;
        acceptor_->accept(socket, ec);
        if (ec) return;
        serve(socket);
      }
    });
    return port;
  }

  fs::path dir_;
  asio::io_context io_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::thread server_;
  std::atomic<bool> stop_ = false;  // set before the server thread is joined
};

TEST_F(DoctorProbe, CertificateAServerPresents) {
  make_certificate(dir_, "DNS:localhost,IP:127.0.0.1", 30);
  auto tls = server::load_tls_context((dir_ / "cert.pem").string(), (dir_ / "key.pem").string());
  ASSERT_TRUE(tls.ok()) << tls.error().message;
  auto context = tls->context;
  const uint16_t port = listen(1, [context](tcp::socket& socket) {
    asio::ssl::stream<tcp::socket&> stream(socket, *context);
    boost::system::error_code ec;
    stream.handshake(asio::ssl::stream_base::server, ec);
    if (!ec) stream.shutdown(ec);
  });
  auto facts = probe_certificate("localhost", port, 5000ms);
  ASSERT_TRUE(facts.ok()) << facts.error().message;
  EXPECT_EQ(facts->subject, "CN=test");
  EXPECT_NE(facts->names.find("DNS:localhost"), std::string::npos) << facts->names;
  EXPECT_TRUE(facts->names_host);
  EXPECT_FALSE(facts->trusted);  // self-signed: no authority the system knows
  EXPECT_NE(facts->trust_problem.find("self-signed"), std::string::npos) << facts->trust_problem;
  EXPECT_GT(facts->seconds_left, 29 * 86400);
  EXPECT_EQ(facts->where, "https://localhost:" + std::to_string(port));
}

TEST_F(DoctorProbe, CertificateFilesAndTheNamesTheyHave) {
  make_certificate(dir_, "DNS:sync.example.com,DNS:*.example.org", 30);
  const std::string cert = (dir_ / "cert.pem").string(), key = (dir_ / "key.pem").string();
  auto exact = certificate_file_facts(cert, key, "sync.example.com");
  ASSERT_TRUE(exact.ok()) << exact.error().message;
  EXPECT_TRUE(exact->names_host);
  EXPECT_FALSE(exact->trusted);
  EXPECT_TRUE(certificate_file_facts(cert, key, "a.example.org")->names_host);
  EXPECT_FALSE(certificate_file_facts(cert, key, "a.b.example.org")->names_host);
  EXPECT_FALSE(certificate_file_facts(cert, key, "other.example.com")->names_host);
  // A key that is not the certificate's: the loader's error, naming the file.
  fs::create_directories(dir_ / "other");
  make_certificate(dir_ / "other", "DNS:x", 1);
  auto swapped = certificate_file_facts(cert, (dir_ / "other" / "key.pem").string(), "sync.example.com");
  ASSERT_FALSE(swapped.ok());
  EXPECT_NE(swapped.error().message.find("does not belong to the certificate"), std::string::npos);
}

TEST_F(DoctorProbe, NothingListening) {
  // A port that was free a moment ago.
  uint16_t port = 0;
  {
    tcp::acceptor a(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  auto facts = probe_certificate("127.0.0.1", port, 2000ms);
  ASSERT_FALSE(facts.ok());
  EXPECT_NE(facts.error().message.find("cannot connect"), std::string::npos) << facts.error().message;
  RoundTripFailure failure;
  auto trip = websocket_round_trip({"127.0.0.1:" + std::to_string(port), false, ""}, "t", 2000ms, &failure);
  ASSERT_FALSE(trip.ok());
  EXPECT_EQ(failure.stage, RoundTripStage::kConnect);
}

TEST_F(DoctorProbe, AServerThatNeverAnswersIsBoundedByTheTimeout) {
  const uint16_t port = listen(2, [this](tcp::socket&) {
    while (!stop_) std::this_thread::sleep_for(10ms);  // holds the connection, says nothing
  });
  const auto started = std::chrono::steady_clock::now();
  auto facts = probe_certificate("127.0.0.1", port, 300ms);
  EXPECT_FALSE(facts.ok());
  RoundTripFailure failure;
  auto trip = websocket_round_trip({"127.0.0.1:" + std::to_string(port), false, ""}, "t", 300ms, &failure);
  EXPECT_FALSE(trip.ok());
  EXPECT_EQ(failure.stage, RoundTripStage::kUpgrade) << trip.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST_F(DoctorProbe, AnUpgradeRefusedSaysTheStatusAndWhy) {
  const uint16_t port = listen(1, [](tcp::socket& socket) {
    asio::streambuf request;
    boost::system::error_code ec;
    asio::read_until(socket, request, "\r\n\r\n", ec);
    const std::string answer = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 14\r\n\r\ntoken expired!";
    asio::write(socket, asio::buffer(answer), ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  });
  RoundTripFailure failure;
  auto trip = websocket_round_trip({"127.0.0.1:" + std::to_string(port), false, ""}, "t", 2000ms, &failure);
  ASSERT_FALSE(trip.ok());
  EXPECT_EQ(failure.stage, RoundTripStage::kUpgrade);
  EXPECT_EQ(failure.http_status, 401);
  EXPECT_NE(trip.error().message.find("HTTP 401 Unauthorized"), std::string::npos) << trip.error().message;
  EXPECT_NE(trip.error().message.find("token expired!"), std::string::npos) << trip.error().message;
}

TEST(ResolveName, LocalhostFromHostsFile) {
  auto a = resolve_name("localhost", 2000ms);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_NE(std::find(a->begin(), a->end(), "127.0.0.1"), a->end());
}

TEST(NonPublicAddress, Ranges) {
  for (const char* a : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.0.1",
                        "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:192.168.0.1", "::"}) {
    EXPECT_TRUE(is_non_public_address(a)) << a;
  }
  for (const char* a : {"93.184.216.34", "172.32.0.1", "8.8.8.8", "2001:db8::1", "::ffff:8.8.8.8", "100.128.0.1"}) {
    EXPECT_FALSE(is_non_public_address(a)) << a;
  }
  EXPECT_FALSE(is_non_public_address("not an address"));
}

}  // namespace
}  // namespace gm::cli
