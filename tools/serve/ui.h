// The web page of `latent serve` (issue 17): GET / lists the models, GET /ui/NAME is a model's
// page, /ui/static/FILE its embedded CSS and JavaScript (ui_assets.h), and /ui/api/... the helper
// data the page needs beyond the KServe endpoints: a model's description, test examples, the 2-D
// scatter of test codes (the projection `latent embed` draws), the training curve and config.
// Every result the page shows comes from the public infer endpoint; nothing here scores.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "served_model.h"

namespace latent::serve {

struct HttpReply;

/// Pages, assets and helper data for a set of served models (thread-safe).
class WebUi {
 public:
  /// `key_required`: the server has --api-key-file (GET /ui/auth.json tells the page, so that it asks for
  /// the key before its first request instead of meeting a 401).
  WebUi(std::vector<std::shared_ptr<ServedModel>> models, bool key_required);
  /// True for the page and asset paths (/, /ui, /ui/...) except /ui/api/...; these need no API key.
  static bool is_page_path(std::string_view path);
  /// True for /ui/api/... (behind the API key like the KServe endpoints).
  static bool is_api_path(std::string_view path);
  /// A page or asset (or GET /ui/auth.json: {"key_required": BOOL}): 200 with an ETag and `Cache-Control: no-cache`, 304 when `if_none_match`
  /// names the current ETag, 404 for unknown paths, 405 for methods other than GET and HEAD.
  HttpReply page(std::string_view method, std::string_view path, std::string_view if_none_match) const;
  /// Helper data as JSON (`Cache-Control: no-store`): /ui/api/models, /ui/api/NAME/info,
  /// /ui/api/NAME/examples, /ui/api/NAME/scatter, /ui/api/NAME/curve, /ui/api/NAME/config.
  HttpReply api(std::string_view method, std::string_view path);

 private:
  struct Cache {
    std::mutex lock;
    std::string examples, scatter;  ///< JSON, computed on first use
  };
  const ServedModel* page_model(std::string_view name) const;  // a scorer or .onnx model, or null
  std::string info(const ServedModel& m) const;
  std::string examples(const ServedModel& m);
  std::string scatter(const ServedModel& m);
  std::vector<std::shared_ptr<ServedModel>> models_;
  bool key_required_ = false;
  std::map<std::string, std::unique_ptr<Cache>, std::less<>> caches_;
};

}  // namespace latent::serve
