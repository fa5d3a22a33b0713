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

constexpr const char* kServeHelp = R"(usage: latent serve MODEL [MODEL...] [--host 127.0.0.1] [--port 8000] [--threads N]
                    [--http-threads M] [--max-batch 64] [--max-wait-us 500] [--max-queue 1024]
                    [--max-body-mb 16] [--api-key-file FILE] [--access-log FILE]

Serves trained runs over HTTP. MODEL is a run directory, served under its directory name, or
NAME=DIR. Each run is two models: NAME (input `input` FP32 [-1, D]; outputs reconstruction, code,
score, is_anomaly, and neg_elbo for VAEs) and NAME-decoder (input `code`; output reconstruction).
Raw rows go through the run's stored preprocessing unless the request sets
"parameters": {"preprocessed": true}.

endpoints:
  GET  /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME, /v2/models/NAME/ready, /metrics
  POST /v2/models/NAME/infer     {"id": "...", "inputs": [{"name": "input", "shape": [N, D],
                                  "datatype": "FP32", "data": [...]}], "outputs": [{"name": "score"}]}
  POST /v1/models/NAME:predict   {"instances": [[...], ...]} -> {"predictions": [...]}
  Image runs also take PNG files as the BYTES input `image` (shape [N]; base64 strings in JSON, or
  binary), decoded and checked against the training size.
  Triton's binary tensor extension (Inference-Header-Content-Length, binary_data_size,
  binary_data, binary_data_output) is accepted, so tritonclient works with its defaults.

options:
  --host ADDR          address to bind (default 127.0.0.1: this machine only)
  --port P             port (default 8000; 0 picks a free one). The first stdout line is
                       `listening on http://HOST:PORT`
  --threads N          compute threads (default: latent's own choice)
  --http-threads M     HTTP connection threads (default 128; one per open keep-alive connection)
  --max-batch R        rows per batched forward pass (default 64)
  --max-wait-us U      longest wait for more rows before a forward pass (default 500)
  --max-queue R        rows waiting per model beyond which requests get 503 (default 1024)
  --max-body-mb MB     largest request body (default 16; larger gets 413)
  --api-key-file FILE  require `Authorization: Bearer KEY` (KEY: the file's first line) except
                       on the health endpoints
  --access-log FILE    append one JSON line per request
SIGTERM or SIGINT stops accepting, finishes in-flight requests and exits 0.
)";

const std::set<std::string> kValued{"host", "port", "threads", "http-threads", "max-batch", "max-wait-us",
                                    "max-queue", "max-body-mb", "api-key-file", "access-log"};

// NAME=DIR, or DIR served as its directory's name.
std::pair<std::string, std::string> model_spec(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq != std::string::npos && eq > 0 && arg.find('/') > eq) return {arg.substr(0, eq), arg.substr(eq + 1)};
  std::filesystem::path p = std::filesystem::path(arg).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::string name = p.filename().string();
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
  // Args takes a fixed number of bare arguments; the models are taken out first.
  std::vector<std::string> options, specs;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.rfind("-", 0) != 0) {
      specs.push_back(a);
      continue;
    }
    options.push_back(a);
    if (a.rfind("--", 0) == 0 && a.find('=') == std::string::npos && kValued.count(a.substr(2)) && i + 1 < argv.size())
      options.push_back(argv[++i]);
  }
  Args a("serve", options, kValued, {}, 0, {});
  if (a.help()) return std::fputs(kServeHelp, stdout), 0;
  if (specs.empty()) throw UsageError{"serve needs at least one MODEL (a run directory; see latent serve --help)"};

  serve::TransportOptions transport;
  transport.host = a.str("host", "127.0.0.1");
  transport.port = static_cast<int>(a.integer("port", 8000, 0, 65535));
  transport.http_threads = static_cast<int>(a.integer("http-threads", 128, 1, 4096));
  transport.max_body_bytes = a.integer("max-body-mb", 16, 1, 4096) << 20;
  serve::ServiceOptions service_options;
  service_options.batch.max_batch = a.integer("max-batch", 64, 1, 1 << 16);
  service_options.batch.max_wait_us = a.integer("max-wait-us", 500, 0, 10'000'000);
  service_options.batch.max_queue = a.integer("max-queue", 1024, 1, 1 << 24);
  if (a.has("api-key-file")) service_options.api_key = read_key(a.str("api-key-file", ""));
  service_options.access_log = a.str("access-log", "");
  if (a.has("threads")) set_num_threads(static_cast<int>(a.integer("threads", 1, 1, 256)));

  std::vector<std::shared_ptr<serve::ServedModel>> models;
  std::set<std::string> names;
  for (const std::string& spec : specs) {
    auto [name, path] = model_spec(spec);
    if (std::filesystem::is_regular_file(path))
      throw UsageError{fmt::format("serve: '{}' is a file; serving .onnx files is not supported yet, give a run directory", path)};
    for (auto& m : serve::serve_run(name, open_run(path))) {
      if (!names.insert(m->signature().name).second)
        throw UsageError{fmt::format("serve: two models are named '{}' (use NAME=DIR to choose)", m->signature().name)};
      models.push_back(std::move(m));
    }
  }
  serve::Service service(models, service_options);
  for (const std::string& name : service.model_names()) fmt::print(stderr, "serving model '{}'\n", name);
  return serve::serve_http(service, transport);
}

}  // namespace latent::tools
