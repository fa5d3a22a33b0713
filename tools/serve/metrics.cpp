#include "metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iterator>
#include <stdexcept>
#include <unistd.h>

#include "protocol.h"

namespace latent::serve {

namespace {

const std::vector<double> kSecondsBounds{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                         0.01,    0.025,  0.05,    0.1,    0.25,   1.0,    2.5};
const std::vector<double> kRowsBounds{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
const std::vector<double> kScoreBounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};

// A label value with \, " and newline escaped as the exposition format requires.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void render_family(std::string& out, const char* name, const char* help, const std::map<std::string, Histogram>& family) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  for (const auto& [model, h] : family) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.bounds->size(); ++i) {
      cumulative += h.counts[i];
      fmt::format_to(std::back_inserter(out), "{}_bucket{{model=\"{}\",le=\"{}\"}} {}\n", name, label(model), (*h.bounds)[i], cumulative);
    }
    fmt::format_to(std::back_inserter(out), "{}_bucket{{model=\"{}\",le=\"+Inf\"}} {}\n", name, label(model), h.count);
    fmt::format_to(std::back_inserter(out), "{}_sum{{model=\"{}\"}} {}\n{}_count{{model=\"{}\"}} {}\n", name, label(model), h.sum,
                   name, label(model), h.count);
  }
}

double resident_bytes() {
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace

void Histogram::observe(double v) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds->begin(), bounds->end(), v) - bounds->begin());
  ++counts[i];
  sum += v;
  ++count;
}

Histogram& Metrics::histogram(std::map<std::string, Histogram>& family, const std::vector<double>& bounds, const std::string& model) {
  Histogram& h = family[model];
  if (!h.bounds) {
    h.bounds = &bounds;
    h.counts.assign(bounds.size() + 1, 0);
  }
  return h;
}

void Metrics::count_request(const std::string& model, const std::string& endpoint, int code, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{model, endpoint, code}];
  histogram(request_seconds_, kSecondsBounds, model).observe(seconds);
}

void Metrics::observe_queue(const std::string& model, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  histogram(queue_seconds_, kSecondsBounds, model).observe(seconds);
}

void Metrics::observe_batch(const std::string& model, int64_t rows, double seconds, bool on_request_thread) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (on_request_thread) ++inline_batches_[model];
  histogram(batch_rows_, kRowsBounds, model).observe(static_cast<double>(rows));
  histogram(inference_seconds_, kSecondsBounds, model).observe(seconds);
}

void Metrics::observe_scores(const std::string& model, const std::vector<float>& scores, int64_t anomalies) {
  std::lock_guard<std::mutex> lock(mutex_);
  Histogram& h = histogram(scores_, kScoreBounds, model);
  for (float s : scores) h.observe(s);
  anomalies_[model] += static_cast<uint64_t>(anomalies);
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP latent_requests_total Requests answered, by model, endpoint and status code.\n"
         "# TYPE latent_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [model, endpoint, code] = key;
    fmt::format_to(std::back_inserter(out), "latent_requests_total{{model=\"{}\",endpoint=\"{}\",code=\"{}\"}} {}\n", label(model),
                   label(endpoint), code, n);
  }
  render_family(out, "latent_request_duration_seconds", "Time from a parsed HTTP request to its reply.", request_seconds_);
  render_family(out, "latent_queue_duration_seconds", "Time a request's rows waited for a forward pass.", queue_seconds_);
  render_family(out, "latent_inference_duration_seconds", "Duration of one batched forward pass.", inference_seconds_);
  render_family(out, "latent_batch_size", "Rows per batched forward pass.", batch_rows_);
  render_family(out, "latent_anomaly_score", "Reconstruction error (score) of answered rows.", scores_);
  out += "# HELP latent_anomalies_total Answered rows whose score exceeded the stored threshold.\n"
         "# TYPE latent_anomalies_total counter\n";
  for (const auto& [model, n] : anomalies_)
    fmt::format_to(std::back_inserter(out), "latent_anomalies_total{{model=\"{}\"}} {}\n", label(model), n);
  out += "# HELP latent_inline_batches_total Forward passes run on the request's own HTTP thread (the model was idle).\n"
         "# TYPE latent_inline_batches_total counter\n";
  for (const auto& [model, n] : inline_batches_)
    fmt::format_to(std::back_inserter(out), "latent_inline_batches_total{{model=\"{}\"}} {}\n", label(model), n);
  fmt::format_to(std::back_inserter(out),
                 "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                 "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n",
                 resident_bytes());
  return out;
}

void AccessLog::open(const std::string& path) {
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) throw std::runtime_error(fmt::format("[serve] cannot open the access log '{}' for appending", path));
}

AccessLog::~AccessLog() {
  if (file_) std::fclose(file_);
}

void AccessLog::write(const AccessRecord& r) {
  if (!file_) return;
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  const std::string line =
      fmt::format("{{\"time\":\"{}.{:06d}Z\",\"id\":{},\"model\":{},\"endpoint\":\"{}\",\"method\":{},\"path\":{},\"code\":{},"
                  "\"rows\":{},\"microseconds\":{}}}\n",
                  stamp, micros, json_quote(r.id), json_quote(r.model), r.endpoint, json_quote(r.method), json_quote(r.path), r.code,
                  r.rows, r.microseconds);
  std::lock_guard<std::mutex> lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

}  // namespace latent::serve
