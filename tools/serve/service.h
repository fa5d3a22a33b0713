// The service's request handling, independent of the transport: a request (method, path, a few
// headers, body) goes in, a reply (status, body, headers) comes out. It routes KServe v2 and v1
// paths, checks the API key and content type, parses with the protocol codec, queues rows on the
// model's Batcher, encodes the outputs, and counts and logs every request.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "batcher.h"
#include "metrics.h"
#include "served_model.h"
#include "ui.h"

namespace latent::serve {

/// What the service needs of an HTTP request.
struct HttpRequest {
  std::string_view method, path, body;
  std::string_view content_type;   ///< the Content-Type header, "" when absent
  std::string_view authorization;  ///< the Authorization header, "" when absent
  std::string_view inference_header_length;  ///< Inference-Header-Content-Length (binary extension), "" when absent
  std::string_view if_none_match;  ///< If-None-Match (the web page's assets), "" when absent
};

/// A reply for the transport to send.
struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Options of a Service.
struct ServiceOptions {
  BatchOptions batch;
  std::string api_key;     ///< when set, every request but the health checks needs `Authorization: Bearer KEY`
  std::string access_log;  ///< a file for one JSON line per request, or ""
};

/// Routes and answers requests for a set of models (thread-safe; one Batcher per model).
class Service {
 public:
  /// Serves `models` (names must be distinct).
  Service(const std::vector<std::shared_ptr<ServedModel>>& models, ServiceOptions options);
  /// Answers one request.
  HttpReply handle(const HttpRequest& request);
  /// Counts and logs a reply the transport made itself (413 body too large, 400 bad request line),
  /// filling its body with `{"error": ...}` when it has none.
  void transport_reply(std::string_view method, std::string_view path, HttpReply& reply);
  /// Finishes queued work and stops the batchers (after the transport has drained).
  void stop();
  /// The metrics registry.
  Metrics& metrics() { return metrics_; }
  /// The served model names, in the order given.
  std::vector<std::string> model_names() const;

 private:
  struct Entry {
    std::shared_ptr<ServedModel> model;
    std::unique_ptr<Batcher> batcher;
  };
  struct Context;  // one request's bookkeeping for metrics and the log
  HttpReply route(const HttpRequest& request, Context& ctx);
  HttpReply infer(const HttpRequest& request, Entry& entry, bool v1, Context& ctx);
  Entry* find(std::string_view name);
  HttpReply unknown_model(std::string_view name) const;

  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
  ServiceOptions options_;
  Metrics metrics_;
  AccessLog log_;
  WebUi ui_;
};

}  // namespace latent::serve
