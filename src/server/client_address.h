// The client's address for logs, sessions and rate limits, when the server may sit
// behind a reverse proxy (`serve --trust-proxy`).
//
// Without trust, it is the TCP peer. With it, and only when the peer is on loopback or
// a private network (where a proxy of ours sits; a client on the internet cannot be
// there), it is the last X-Forwarded-For entry over all such header lines: the one our
// proxy added; what comes before it is the client's own word. An entry that does not
// parse as an address leaves the peer.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server/http_router.h"

namespace gm::server {

std::string client_address(const HttpRequest& req, const RequestInfo& info, bool trust_proxy);

// A request from this machine itself: a loopback peer, and not relayed by a proxy (no
// X-Forwarded-For or Forwarded header), whatever --trust-proxy says.
bool is_local_request(const HttpRequest& req, const RequestInfo& info);

// One X-Forwarded-For entry as an address: "198.51.100.7", "198.51.100.7:4711",
// "[2001:db8::5]:4711", "2001:db8::5%eth0"; a v4-mapped v6 as its v4.
std::optional<std::string> parse_forwarded_address(std::string_view entry);

}  // namespace gm::server
