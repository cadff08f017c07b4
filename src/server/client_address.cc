#include "server/client_address.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>

namespace gm::server {
namespace {

// A peer that may be our reverse proxy: loopback or a private network (RFC 1918, IPv6
// unique-local and link-local). A client on the internet cannot be one of those.
bool may_be_our_proxy(const boost::asio::ip::address& a) {
  if (a.is_loopback()) return true;
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168);
  }
  const auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) return may_be_our_proxy(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6));
  return (v6.to_bytes()[0] & 0xfe) == 0xfc || v6.is_link_local();
}

}  // namespace

bool is_local_request(const HttpRequest& req, const RequestInfo& info) {
  if (req.count("X-Forwarded-For") != 0 || req.count(http::field::forwarded) != 0) return false;
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(info.remote_address, ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  return a.is_loopback();
}

std::optional<std::string> parse_forwarded_address(std::string_view entry) {
  while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t')) entry.remove_prefix(1);
  while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t')) entry.remove_suffix(1);
  if (!entry.empty() && entry.front() == '[') {
    const size_t close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    entry = entry.substr(1, close - 1);
  } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
    entry = entry.substr(0, entry.find(':'));  // v4 with a port
  }
  entry = entry.substr(0, entry.find('%'));  // a v6 zone
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(std::string(entry), ec);
  if (ec) return std::nullopt;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  return a.to_string();
}

std::string client_address(const HttpRequest& req, const RequestInfo& info, bool trust_proxy) {
  if (!trust_proxy) return info.remote_address;
  boost::system::error_code ec;
  const auto peer = boost::asio::ip::make_address(info.remote_address, ec);
  if (ec || !may_be_our_proxy(peer)) return info.remote_address;
  std::string_view last;
  // The lines in the order they came (a proxy may add a line rather than extend one).
  const auto [first, end] = req.equal_range("X-Forwarded-For");
  for (auto it = first; it != end; ++it) {
    std::string_view line = it->value();
    const size_t comma = line.rfind(',');
    last = comma == std::string_view::npos ? line : line.substr(comma + 1);
  }
  if (last.empty()) return info.remote_address;
  return parse_forwarded_address(last).value_or(info.remote_address);
}

}  // namespace gm::server
