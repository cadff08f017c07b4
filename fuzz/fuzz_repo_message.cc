// Fuzzes the automerge-repo message decoder (src/repo/message.h): any bytes must decode
// to a message or an Error without crashing, and a decoded message must survive an
// encode → decode round trip unchanged.
#include <cstdint>
#include <cstdlib>

#include "repo/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto decoded = gm::repo::decode_message(gm::ByteView(data, size));
  if (!decoded.ok()) return 0;
  gm::Bytes encoded = gm::repo::encode_message(*decoded);
  auto again = gm::repo::decode_message(encoded);
  if (!again.ok() || !(*again == *decoded)) std::abort();
  return 0;
}
