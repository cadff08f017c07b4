// Fuzzes the OAuth client's readers of what a PDS and its authorization server send
// (src/atproto/oauth_client.h): protected-resource metadata, authorization-server
// metadata and a token response. Nothing may crash, and what is accepted must be what
// each reader promises.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "atproto/oauth_client.h"

namespace {

using namespace gm::atproto;

constexpr std::string_view kPds = "https://pds.example.com";
constexpr std::string_view kIssuer = "https://auth.example.com";

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto issuer = oauth::parse_protected_resource_metadata(text, kPds); issuer.ok()) {
    require(check_url(*issuer).ok());
    require(issuer->find('?') == std::string::npos && issuer->find('#') == std::string::npos);
  }
  if (auto server = oauth::parse_auth_server_metadata(text, kIssuer); server.ok()) {
    require(server->issuer == kIssuer);
    for (const std::string* url : {&server->authorization_endpoint, &server->token_endpoint, &server->par_endpoint}) {
      require(check_url(*url).ok());
    }
  }
  if (auto signed_in = oauth::parse_token_response(text); signed_in.ok()) {
    require(signed_in->sub.rfind("did:", 0) == 0);
    require(signed_in->scope.find("atproto") != std::string::npos);
  }
  return 0;
}
