// `latent serve`: trained runs behind an HTTP service speaking KServe v2 / Triton JSON and KServe
// v1, with micro-batching, Prometheus metrics and an access log (the parts live in tools/serve/).
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cli.h"
#include "commands.h"
#include "latent.h"
#include "serve/served_model.h"
#include "serve/service.h"
#include "serve/transport.h"

namespace latent::tools {

namespace {

constexpr const char* kServeAbout =
    R"(Serves trained runs and ONNX models over HTTP. MODEL is a run directory, served under its
directory name, an .onnx file, served under its file name without .onnx, or NAME=PATH. Each run is two models: NAME (input `input` FP32 [-1, D]; outputs reconstruction, code,
score, is_anomaly, and neg_elbo for VAEs) and NAME-decoder (input `code`; output reconstruction).
Raw rows go through the run's stored preprocessing unless the request sets
"parameters": {"preprocessed": true}. An .onnx model (through latent's ONNX import) takes and
gives its graph's own inputs and outputs, as rows (dimensions after the batch flattened), with no
preprocessing and no score. The first stdout line is `listening on http://HOST:PORT`.
SIGTERM or SIGINT stops accepting, finishes in-flight requests and exits 0.

endpoints:
  GET  /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME, /v2/models/NAME/ready, /metrics
  POST /v2/models/NAME/infer     {"id": "...", "inputs": [{"name": "input", "shape": [N, D],
                                  "datatype": "FP32", "data": [...]}], "outputs": [{"name": "score"}]}
  POST /v1/models/NAME:predict   {"instances": [[...], ...]} -> {"predictions": [...]}
  Image runs also take PNG files as the BYTES input `image` (shape [N]; base64 strings in JSON, or
  binary), decoded and checked against the training size.
  Triton's binary tensor extension (Inference-Header-Content-Length, binary_data_size,
  binary_data, binary_data_output) is accepted, so tritonclient works with its defaults.
  GET  /, /ui/NAME               a web page per model (built in; it calls the infer endpoint),
                                 with helper data under /ui/api/ (examples, scatter, curve, config))";

// NAME=PATH, or PATH served as its directory name (a run) or file name without .onnx.
std::pair<std::string, std::string> model_spec(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq != std::string::npos && eq > 0 && arg.find('/') > eq) return {arg.substr(0, eq), arg.substr(eq + 1)};
  std::filesystem::path p = std::filesystem::path(arg).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::string name = p.extension() == ".onnx" ? p.stem().string() : p.filename().string();
  if (name.empty() || name == "." || name == "..") name = std::filesystem::absolute(p).lexically_normal().filename().string();
  return {name, arg};
}

std::string read_key(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError{fmt::format("serve: cannot read --api-key-file '{}'", path)};
  std::string key;
  std::getline(in, key);
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ' || key.back() == '\t')) key.pop_back();
  if (key.empty()) throw UsageError{fmt::format("serve: --api-key-file '{}' has an empty first line", path)};
  return key;
}

}  // namespace

int cmd_serve(const std::vector<std::string>& argv) {
  std::vector<std::string> specs;
  serve::TransportOptions transport;
  serve::ServiceOptions service_options;
  int64_t max_body_mb = 16, threads = 0;
  std::string api_key_file;
  Options opts("serve", kServeAbout);
  opts.repeated("MODEL", specs, "one MODEL (a run directory or an .onnx file)");
  opts.text("host", "ADDR", transport.host, "address to bind (127.0.0.1: this machine only)");
  opts.integer("port", "P", transport.port, 0, 65535, "port (0 picks a free one)");
  opts.integer("threads", "N", threads, 1, 256, "compute threads").shown_default("latent's own choice");
  opts.integer("http-threads", "M", transport.http_threads, 1, 4096, "HTTP connection threads (one per open keep-alive connection)");
  opts.integer("max-batch", "R", service_options.batch.max_batch, 1, 1 << 16, "rows per batched forward pass");
  opts.integer("max-wait-us", "U", service_options.batch.max_wait_us, 0, 10'000'000, "longest wait in microseconds for more rows before a forward pass");
  opts.integer("max-queue", "R", service_options.batch.max_queue, 1, 1 << 24, "rows waiting per model beyond which requests get 503");
  opts.integer("max-body-mb", "MB", max_body_mb, 1, 4096, "largest request body in MiB (larger gets 413)");
  opts.text("api-key-file", "FILE", api_key_file, "require `Authorization: Bearer KEY` (KEY: the file's first line) except on the health endpoints and the web page's files (its data needs it)");
  opts.text("access-log", "FILE", service_options.access_log, "append one JSON line per request");
  if (!opts.parse(argv)) return 0;
  // Before any thread starts (loading may run the compute pool), so that all of them inherit it.
  serve::block_stop_signals();
  transport.max_body_bytes = max_body_mb << 20;
  if (!api_key_file.empty()) service_options.api_key = read_key(api_key_file);
  if (threads > 0) set_num_threads(static_cast<int>(threads));

  std::vector<std::shared_ptr<serve::ServedModel>> models;
  std::set<std::string> names;
  for (const std::string& spec : specs) {
    auto [name, path] = model_spec(spec);
    std::vector<std::shared_ptr<serve::ServedModel>> served;
    if (std::filesystem::is_regular_file(path)) {
      if (std::filesystem::path(path).extension() != ".onnx")
        throw UsageError{fmt::format("serve: '{}' is a file but not an .onnx model; give a run directory or an .onnx file", path)};
      served.push_back(serve::serve_onnx(name, path));
    } else {
      served = serve::serve_run(name, open_run(path));
    }
    for (auto& m : served) {
      if (!names.insert(m->signature().name).second)
        throw UsageError{fmt::format("serve: two models are named '{}' (use NAME=PATH to choose)", m->signature().name)};
      models.push_back(std::move(m));
    }
  }
  serve::Service service(models, service_options);
  for (const std::string& name : service.model_names()) fmt::print(stderr, "serving model '{}'\n", name);
  return serve::serve_http(service, transport);
}

}  // namespace latent::tools
