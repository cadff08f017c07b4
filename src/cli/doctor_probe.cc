#include "cli/doctor_probe.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "repo/message.h"
#include "server/tls.h"
#include "util/bytes.h"
#include "util/text.h"

namespace gm::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// The server's answer to a join is small; anything bigger is not it.
constexpr size_t kMaxMessageBytes = 1 << 20;
// Messages read while waiting for `peer` (a server may send others first: none does today).
constexpr int kMaxMessagesBeforePeer = 8;

bool is_ip_literal(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 || ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// Whether `leaf` is for `host_name` (a DNS name, wildcards as browsers take them, or an
// IP address).
bool names_host(X509* leaf, const std::string& host_name) {
  if (is_ip_literal(host_name)) return X509_check_ip_asc(leaf, host_name.c_str(), 0) == 1;
  // Never the subject's CN: browsers ignore it, so a certificate without the name in its
  // SANs is refused by them whatever the CN says (review).
  return X509_check_host(leaf, host_name.c_str(), host_name.size(),
                         X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) == 1;
}

CertificateFacts facts_of(X509* leaf, size_t chain_length, const std::string& host_name, std::string where) {
  const server::TlsCertificateInfo info = server::describe_certificate(leaf, chain_length);
  CertificateFacts f;
  f.where = std::move(where);
  f.subject = info.subject;
  f.names = info.names;
  f.not_after = info.not_after;
  f.seconds_left = info.seconds_left;
  f.names_host = names_host(leaf, host_name);
  return f;
}

std::string ms(std::chrono::milliseconds t) { return std::to_string(t.count()) + " ms"; }

// Endpoints of `host_name`:`port`, resolved within `timeout`.
Result<std::vector<tcp::endpoint>> endpoints_of(const std::string& host_name, uint16_t port,
                                                std::chrono::milliseconds timeout) {
  GM_ASSIGN_OR_RETURN(std::vector<std::string> addresses, resolve_name(host_name, timeout));
  std::vector<tcp::endpoint> out;
  for (const std::string& a : addresses) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(a, ec);
    if (!ec) out.emplace_back(address, port);
  }
  if (out.empty()) return error(host_name + " resolves to no address");
  return out;
}

// "localhost:3031" → ("localhost", 3031); no port: `default_port`.
Result<std::pair<std::string, uint16_t>> split_host(const std::string& host, uint16_t default_port) {
  const size_t colon = host.find(':');
  if (colon == std::string::npos) return std::make_pair(host, default_port);
  const std::string port = host.substr(colon + 1);
  char* end = nullptr;
  const long v = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || v < 1 || v > 65535) return error("\"" + host + "\": the port is not a number");
  return std::make_pair(host.substr(0, colon), static_cast<uint16_t>(v));
}

std::string ssl_problem(const boost::system::error_code& ec, SSL* native) {
  if (native != nullptr) {
    const long verify = SSL_get_verify_result(native);
    if (verify != X509_V_OK) return std::string("certificate: ") + X509_verify_cert_error_string(verify);
  }
  return ec.message();
}

// Runs `work` (a coroutine) on its own io_context for at most `timeout`; false if it
// did not finish by then (its sockets are closed as the context goes). What it threw
// (it reports through its state; Asio may still throw, out of memory) goes to `problem`.
template <class Work>
bool run_bounded(Work work, std::chrono::milliseconds timeout, std::string& problem) {
  asio::io_context ioc;
  bool finished = false;
  asio::co_spawn(ioc, std::move(work), [&finished, &problem](std::exception_ptr e) {
    finished = true;
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      problem = x.what();
    }
  });
  ioc.run_for(timeout);
  return finished;
}

const char* stage_name(RoundTripStage stage) {
  switch (stage) {
    case RoundTripStage::kResolve:
      return "the name lookup";
    case RoundTripStage::kConnect:
      return "the connection";
    case RoundTripStage::kTls:
      return "the TLS handshake";
    case RoundTripStage::kUpgrade:
      return "the WebSocket upgrade";
    case RoundTripStage::kJoin:
      return "join, waiting for peer";
    case RoundTripStage::kTimeout:
      break;
  }
  return "?";
}

// --- the round trip --------------------------------------------------------------------

struct RoundTripState {
  WebSocketTarget target;
  std::string host_name;
  uint16_t port = 0;
  std::vector<tcp::endpoint> endpoints;
  std::string token;
  std::chrono::milliseconds step_timeout{0};
  std::shared_ptr<ssl::context> tls;
  // Out.
  RoundTripStage stage = RoundTripStage::kConnect;
  int http_status = 0;
  std::string problem;
  RoundTrip result;
  bool ok = false;
};

std::string random_peer_id() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::string out = "groundmist-sync-doctor-";
  for (int i = 0; i < 12; ++i) out.push_back(kAlphabet[rd() % 36]);
  return out;
}

template <class Stream>
asio::awaitable<void> talk(websocket::stream<Stream>& ws, RoundTripState& s,
                           std::chrono::steady_clock::time_point started) {
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = s.step_timeout;
  timeouts.idle_timeout = s.step_timeout;  // no answer for this long: closed
  timeouts.keep_alive_pings = false;
  ws.set_option(timeouts);
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::request_type& req) { req.set(http::field::user_agent, "groundmist-sync doctor"); }));
  ws.read_message_max(kMaxMessageBytes);

  s.stage = RoundTripStage::kUpgrade;
  websocket::response_type res;
  // The token is not escaped: session tokens are URL-safe (auth/session_token.h), and
  // apps send it so.
  auto [upgrade_ec] = co_await ws.async_handshake(res, s.target.host, "/?token=" + s.token, kTuple);
  if (upgrade_ec) {
    s.http_status = static_cast<int>(res.result_int());
    if (upgrade_ec == websocket::error::upgrade_declined && s.http_status != 0) {
      const std::string body = printable(res.body(), 300);
      s.problem = "the server answered HTTP " + std::to_string(s.http_status) + " " + std::string(res.reason()) +
                  " to the upgrade" + (body.empty() ? "" : ": " + body);
    } else {
      s.problem = "the upgrade failed: " + upgrade_ec.message();
    }
    co_return;
  }

  s.stage = RoundTripStage::kJoin;
  repo::JoinMessage join;
  join.sender_id = random_peer_id();
  join.peer_metadata.is_ephemeral = true;
  join.supported_protocol_versions = std::vector<std::string>{"1"};
  ws.binary(true);
  const Bytes frame = repo::encode_message(join);
  if (auto [ec, n] = co_await ws.async_write(asio::buffer(frame), kTuple); ec) {
    s.problem = "sending join: " + ec.message();
    co_return;
  }
  for (int i = 0; i < kMaxMessagesBeforePeer; ++i) {
    beast::flat_buffer buffer;
    auto [ec, n] = co_await ws.async_read(buffer, kTuple);
    if (ec) {
      s.problem = ec == websocket::error::closed
                      ? "the server closed the socket after join (" + std::to_string(ws.reason().code) + " " +
                            printable(std::string(ws.reason().reason.data(), ws.reason().reason.size()), 200) + ")"
                      : "waiting for the server's peer message: " + ec.message();
      co_return;
    }
    const auto data = buffer.cdata();
    auto message = repo::decode_message(ByteView(static_cast<const uint8_t*>(data.data()), data.size()));
    if (!message.ok()) {
      s.problem = "the server sent a message that is not automerge-repo CBOR: " + message.error().message;
      co_return;
    }
    if (auto* e = std::get_if<repo::ErrorMessage>(&*message)) {
      s.problem = "the server answered join with an error: " + printable(e->message, 300);
      co_return;
    }
    if (auto* peer = std::get_if<repo::PeerMessage>(&*message)) {
      if (peer->target_id != join.sender_id) {
        s.problem = "the server's peer message is addressed to " + printable(peer->target_id, 100) + ", not to " +
                    join.sender_id;
        co_return;
      }
      s.result.server_peer_id = printable(peer->sender_id, 300);
      s.result.selected_protocol = printable(peer->selected_protocol_version, 20);
      s.result.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
      s.ok = true;
      break;
    }
  }
  if (!s.ok) {
    s.problem = "no peer message among the server's first " + std::to_string(kMaxMessagesBeforePeer) + " messages";
    co_return;
  }
  // A clean goodbye; the result stands whatever the close does.
  co_await ws.async_close(websocket::close_code::normal, kTuple);
}

asio::awaitable<void> round_trip(RoundTripState& s) {
  const auto started = std::chrono::steady_clock::now();
  auto executor = co_await asio::this_coro::executor;
  beast::tcp_stream tcp(executor);
  tcp.expires_after(s.step_timeout);
  s.stage = RoundTripStage::kConnect;
  if (auto [ec, endpoint] = co_await tcp.async_connect(s.endpoints, kTuple); ec) {
    s.problem = "cannot connect to " + s.host_name + " port " + std::to_string(s.port) + ": " + ec.message();
    co_return;
  }
  if (!s.target.tls) {
    tcp.expires_never();  // the WebSocket's own timeouts from here
    websocket::stream<beast::tcp_stream> ws(std::move(tcp));
    co_await talk(ws, s, started);
    co_return;
  }
  s.stage = RoundTripStage::kTls;
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(std::move(tcp), *s.tls);
  SSL* native = ws.next_layer().native_handle();
  if (!is_ip_literal(s.host_name)) SSL_set_tlsext_host_name(native, s.host_name.c_str());
  ws.next_layer().set_verify_mode(ssl::verify_peer);
  ws.next_layer().set_verify_callback(ssl::host_name_verification(s.host_name));
  if (auto [ec] = co_await ws.next_layer().async_handshake(ssl::stream_base::client, kTuple); ec) {
    s.problem =
        "TLS handshake with " + s.host_name + " port " + std::to_string(s.port) + " failed: " + ssl_problem(ec, native);
    co_return;
  }
  beast::get_lowest_layer(ws).expires_never();
  co_await talk(ws, s, started);
}

// --- the certificate probe ----------------------------------------------------------------

struct ProbeState {
  std::string host_name;
  uint16_t port = 0;
  std::vector<tcp::endpoint> endpoints;
  std::chrono::milliseconds timeout{0};
  std::string problem;
  std::optional<CertificateFacts> facts;
};

asio::awaitable<void> probe(ProbeState& s) {
  auto executor = co_await asio::this_coro::executor;
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_default_verify_paths();
  beast::ssl_stream<beast::tcp_stream> stream(executor, ctx);
  beast::get_lowest_layer(stream).expires_after(s.timeout);
  if (auto [ec, endpoint] = co_await beast::get_lowest_layer(stream).async_connect(s.endpoints, kTuple); ec) {
    s.problem = "cannot connect to " + s.host_name + " port " + std::to_string(s.port) + ": " + ec.message();
    co_return;
  }
  SSL* native = stream.native_handle();
  if (!is_ip_literal(s.host_name)) SSL_set_tlsext_host_name(native, s.host_name.c_str());
  // Verified, but not refused: the verdict says why it does not verify.
  stream.set_verify_mode(ssl::verify_peer);
  stream.set_verify_callback([](bool, ssl::verify_context&) { return true; });
  if (auto [ec] = co_await stream.async_handshake(ssl::stream_base::client, kTuple); ec) {
    s.problem = "TLS handshake with " + s.host_name + " port " + std::to_string(s.port) + " failed: " + ec.message();
    co_return;
  }
  X509* leaf = SSL_get0_peer_certificate(native);
  if (leaf == nullptr) {
    s.problem = s.host_name + " presented no certificate";
    co_return;
  }
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(native);  // the leaf included, on a client
  const size_t chain_length = chain ? static_cast<size_t>(std::max(0, sk_X509_num(chain) - 1)) : 0;
  const std::string where = "https://" + s.host_name + (s.port == 443 ? "" : ":" + std::to_string(s.port));
  CertificateFacts f = facts_of(leaf, chain_length, s.host_name, where);
  const long verify = SSL_get_verify_result(native);
  f.trusted = verify == X509_V_OK;
  if (!f.trusted) f.trust_problem = X509_verify_cert_error_string(verify);
  s.facts = std::move(f);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
  co_await stream.async_shutdown(kTuple);
}

}  // namespace

Result<std::vector<std::string>> resolve_name(const std::string& name, std::chrono::milliseconds timeout) {
  struct Lookup {
    std::mutex mu;
    std::condition_variable done_cv;
    bool done = false;
    int rc = 0;
    std::vector<std::string> addresses;
  };
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, name] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &list);
    std::vector<std::string> addresses;
    for (addrinfo* a = list; rc == 0 && a != nullptr; a = a->ai_next) {
      char text[INET6_ADDRSTRLEN] = {0};
      const void* where = a->ai_family == AF_INET
                              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
      if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
          ::inet_ntop(a->ai_family, where, text, sizeof text) != nullptr &&
          std::find(addresses.begin(), addresses.end(), text) == addresses.end()) {
        addresses.emplace_back(text);
      }
    }
    if (list != nullptr) ::freeaddrinfo(list);
    std::lock_guard lock(lookup->mu);
    lookup->rc = rc;
    lookup->addresses = std::move(addresses);
    lookup->done = true;
    lookup->done_cv.notify_all();
  }).detach();
  std::unique_lock lock(lookup->mu);
  if (!lookup->done_cv.wait_for(lock, timeout, [&] { return lookup->done; })) {
    return error(ErrorCode::kIo, "no answer for " + name + " within " + ms(timeout));
  }
  if (lookup->rc != 0) {
    const bool unknown = lookup->rc == EAI_NONAME || lookup->rc == EAI_NODATA;
    return error(unknown ? ErrorCode::kNotFound : ErrorCode::kIo,
                 name + " does not resolve: " + ::gai_strerror(lookup->rc));
  }
  if (lookup->addresses.empty()) return error(ErrorCode::kNotFound, name + " resolves to no IP address");
  return lookup->addresses;
}

bool is_non_public_address(const std::string& text) {
  boost::system::error_code ec;
  const auto a = asio::ip::make_address(text, ec);
  if (ec) return false;
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    return b[0] == 127 || b[0] == 10 || b[0] == 0 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
           (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254) || (b[0] == 100 && (b[1] & 0xc0) == 64);
  }
  const auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) return is_non_public_address(asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string());
  const auto b = v6.to_bytes();
  return v6.is_loopback() || v6.is_unspecified() || v6.is_link_local() || (b[0] & 0xfe) == 0xfc;
}

Result<CertificateFacts> certificate_file_facts(const std::string& cert_file, const std::string& key_file,
                                                const std::string& host_name) {
  GM_ASSIGN_OR_RETURN(server::TlsContext loaded, server::load_tls_context(cert_file, key_file));
  SSL_CTX* native = loaded.context->native_handle();
  X509* leaf = SSL_CTX_get0_certificate(native);
  if (leaf == nullptr) return error("TLS certificate " + cert_file + ": no certificate in the context");
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(native, &chain);
  CertificateFacts f = facts_of(leaf, loaded.certificate.chain_length, host_name, cert_file);

  // The chain as apps would check it: the file's certificates up to an authority the
  // system trusts.
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  if (!store || !ctx || X509_STORE_set_default_paths(store.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), leaf, chain) != 1) {
    ERR_clear_error();
    return error("TLS certificate " + cert_file + ": cannot set up a certificate check (OpenSSL)");
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  f.trusted = X509_verify_cert(ctx.get()) == 1;
  if (!f.trusted) f.trust_problem = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  ERR_clear_error();
  return f;
}

Result<CertificateFacts> probe_certificate(const std::string& host_name, uint16_t port,
                                           std::chrono::milliseconds timeout) {
  ProbeState s;
  s.host_name = host_name;
  s.port = port;
  s.timeout = timeout;
  GM_ASSIGN_OR_RETURN(s.endpoints, endpoints_of(host_name, port, timeout));
  if (!run_bounded(probe(s), timeout + std::chrono::seconds(1), s.problem) && !s.facts) {
    return error("no TLS handshake with " + host_name + " port " + std::to_string(port) + " within " + ms(timeout));
  }
  if (!s.facts) return error(s.problem);
  return *s.facts;
}

Result<RoundTrip> websocket_round_trip(const WebSocketTarget& target, const std::string& token,
                                       std::chrono::milliseconds timeout, RoundTripFailure* failure) {
  RoundTripFailure ignored;
  if (failure == nullptr) failure = &ignored;
  RoundTripState s;
  s.target = target;
  s.token = token;
  s.step_timeout = timeout;
  failure->stage = RoundTripStage::kResolve;
  auto split = split_host(target.host, target.tls ? 443 : 80);
  if (!split.ok()) return split.error();
  std::tie(s.host_name, s.port) = *split;
  auto endpoints = endpoints_of(s.host_name, s.port, timeout);
  if (!endpoints.ok()) return endpoints.error();
  s.endpoints = std::move(endpoints).value();
  if (target.tls) {
    s.tls = std::make_shared<ssl::context>(ssl::context::tls_client);
    s.tls->set_default_verify_paths();
    if (!target.ca_file.empty()) {
      boost::system::error_code ec;
      s.tls->load_verify_file(target.ca_file, ec);
      if (ec) return error("cannot read the certificate " + target.ca_file + ": " + ec.message());
      // The file's own certificate is trusted as it is, not only an authority above it.
      X509_STORE_set_flags(SSL_CTX_get_cert_store(s.tls->native_handle()), X509_V_FLAG_PARTIAL_CHAIN);
    }
  }
  // Each step has `timeout`; the whole at most four of them (connect, TLS, upgrade, join).
  const bool finished = run_bounded(round_trip(s), 4 * timeout + std::chrono::seconds(1), s.problem);
  if (s.ok) return s.result;
  failure->stage = finished ? s.stage : RoundTripStage::kTimeout;
  failure->http_status = s.http_status;
  if (!finished) return error("no answer within " + ms(4 * timeout) + ", at " + stage_name(s.stage));
  return error(s.problem.empty() ? "the round trip ended without an answer" : s.problem);
}

}  // namespace gm::cli
