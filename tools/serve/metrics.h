// What the service tells its operators: one registry of Prometheus counters and histograms,
// rendered by hand in the text exposition format (GET /metrics), and the access log (one JSON
// line per request). Neither knows about sockets.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace latent::serve {

/// A Prometheus histogram: cumulative buckets by upper bound, sum and count.
struct Histogram {
  const std::vector<double>* bounds = nullptr;
  std::vector<uint64_t> counts;  ///< per bucket, not cumulative; the last is +Inf
  double sum = 0;
  uint64_t count = 0;
  void observe(double v);
};

/// The service's metrics, labelled by model (thread-safe).
class Metrics {
 public:
  /// One answered request: status code, and its time in the service.
  void count_request(const std::string& model, const std::string& endpoint, int code, double seconds);
  /// Time a request's rows waited in the batch queue.
  void observe_queue(const std::string& model, double seconds);
  /// One forward pass: its rows and duration; `on_request_thread` when it ran inline (the model
  /// was idle, so the request's own HTTP thread ran it; see batcher.h).
  void observe_batch(const std::string& model, int64_t rows, double seconds, bool on_request_thread = false);
  /// Anomaly scores of answered rows, and how many were flagged.
  void observe_scores(const std::string& model, const std::vector<float>& scores, int64_t anomalies);
  /// The text exposition format (version 0.0.4), process resident memory included.
  std::string render() const;

 private:
  Histogram& histogram(std::map<std::string, Histogram>& family, const std::vector<double>& bounds, const std::string& model);
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> request_seconds_, queue_seconds_, inference_seconds_, batch_rows_, scores_;
  std::map<std::string, uint64_t> anomalies_, inline_batches_;
};

/// One request as the access log records it.
struct AccessRecord {
  std::string id, model, endpoint, method, path;
  int code = 0;
  int64_t rows = 0;
  int64_t microseconds = 0;
};

/// Appends one JSON line per request to a file (thread-safe; a no-op when not opened).
class AccessLog {
 public:
  /// Opens `path` for appending; throws naming the file when it cannot.
  void open(const std::string& path);
  ~AccessLog();
  /// Writes `{"time", "id", "model", "endpoint", "method", "path", "code", "rows", "microseconds"}`.
  void write(const AccessRecord& r);

 private:
  std::mutex mutex_;
  std::FILE* file_ = nullptr;
};

}  // namespace latent::serve
