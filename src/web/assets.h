// The console's pages and scripts (src/web/console/), compiled into the program by
// embed_assets.cmake: the console needs nothing but the binary.
#pragma once

#include <span>
#include <string_view>

namespace gm::web {

struct Asset {
  std::string_view name;   // the file's name in src/web/console/
  std::string_view bytes;
};

std::span<const Asset> console_assets();

}  // namespace gm::web
