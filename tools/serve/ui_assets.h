// The web page's files, embedded at build time (tools/serve/ui/embed_assets.py writes
// ui_assets.cpp in the build directory from tools/serve/ui/*).
#pragma once

#include <string_view>
#include <vector>

namespace latent::serve {

/// One embedded file.
struct UiAsset {
  std::string_view name;          ///< its file name, e.g. "ui.js"
  std::string_view content_type;  ///< e.g. "text/javascript; charset=utf-8"
  std::string_view etag;          ///< a quoted hash of the bytes, for If-None-Match
  std::string_view bytes;
};

/// Every embedded file.
const std::vector<UiAsset>& ui_assets();

}  // namespace latent::serve
