// The network steps of `groundmist-sync doctor` (cli/doctor_command.h), each bounded by
// a timeout: a name lookup, the certificate a TLS server presents, the certificate
// files the server serves, and a WebSocket round trip through the public URL.
//
// Name lookups are getaddrinfo, the system's resolver as the server and apps use it
// (/etc/hosts, then DNS), run on a thread of its own: getaddrinfo cannot be cancelled,
// so past the timeout it is left to finish, and its answer is dropped.
//
// The round trip is what an app does (spec/automerge.md §3.2): connect, TLS with the
// host name checked (wss), the WebSocket upgrade of GET /?token=<token> with
// Host: <host>, a `join` (peer id groundmist-sync-doctor-<random>, ephemeral, protocol
// "1"), and the server's `peer` addressed to it back; then a normal close. A `wss` round
// trip sends the token only to a server whose certificate verifies.
//
// The certificate probe (a proxy in front, no TLS files to read) completes the handshake
// even when the certificate does not verify, so that it can say why (expired, other
// names, unknown authority); it sends nothing over the connection and closes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/doctor_report.h"
#include "util/result.h"

namespace gm::cli {

// The addresses `name` resolves to, as text ("127.0.0.1", "::1"), within `timeout`.
Result<std::vector<std::string>> resolve_name(const std::string& name, std::chrono::milliseconds timeout);

// True for loopback, private (RFC 1918, fc00::/7), link-local and unspecified addresses:
// ones apps on the internet cannot reach.
bool is_non_public_address(const std::string& address);

// The certificate in `cert_file` (with its key, checked to match: server/tls.h) and
// whether it names `host_name` and verifies against the system's authorities.
Result<CertificateFacts> certificate_file_facts(const std::string& cert_file, const std::string& key_file,
                                                const std::string& host_name);

// The certificate https://host_name:port presents.
Result<CertificateFacts> probe_certificate(const std::string& host_name, uint16_t port,
                                           std::chrono::milliseconds timeout);

struct WebSocketTarget {
  std::string host;     // host[:port] as apps use it ("sync.example.com", "localhost:3031")
  bool tls = true;      // wss (else ws)
  std::string ca_file;  // a PEM file to trust beside the system's authorities (a development host's own)
};

struct RoundTrip {
  std::string server_peer_id;
  std::string selected_protocol;
  std::chrono::milliseconds took{0};
};

// Where a round trip stopped, for the fix doctor prints.
enum class RoundTripStage { kResolve, kConnect, kTls, kUpgrade, kJoin, kTimeout };
struct RoundTripFailure {
  RoundTripStage stage = RoundTripStage::kConnect;
  int http_status = 0;  // kUpgrade: what the server answered instead of 101
};

Result<RoundTrip> websocket_round_trip(const WebSocketTarget& target, const std::string& token,
                                       std::chrono::milliseconds timeout, RoundTripFailure* failure);

}  // namespace gm::cli
