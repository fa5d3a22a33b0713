#include "ui.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "../projection.h"
#include "protocol.h"
#include "service.h"
#include "ui_assets.h"

namespace latent::serve {

namespace {

constexpr std::string_view kApi = "/ui/api/", kStatic = "/ui/static/";
constexpr int64_t kExamples = 16;
// The page's own files and the server's endpoints only: no CDN, no inline script.
constexpr const char* kPolicy =
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'";

HttpReply json_error(int status, std::string_view message) {
  HttpReply r;
  r.status = status;
  r.body = encode_error(message);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpReply not_allowed(std::string_view method, std::string_view path) {
  HttpReply r = json_error(405, fmt::format("method {} is not allowed on {} (use GET)", method, path));
  r.headers.emplace_back("Allow", "GET, HEAD");
  return r;
}

const UiAsset* find_asset(std::string_view name) {
  for (const UiAsset& a : ui_assets())
    if (a.name == name) return &a;
  return nullptr;
}

// An If-None-Match header names `etag` ("*", one tag, or a comma-separated list; W/ ignored).
bool etag_matches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view tag = header.substr(0, comma);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

HttpReply asset_reply(const UiAsset& a, std::string_view if_none_match) {
  HttpReply r;
  r.headers.emplace_back("ETag", std::string(a.etag));
  r.headers.emplace_back("Cache-Control", "no-cache");  // revalidate: the binary may have been rebuilt
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (a.name.size() > 5 && a.name.substr(a.name.size() - 5) == ".html") {
    r.headers.emplace_back("Content-Security-Policy", kPolicy);
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
  }
  r.content_type = std::string(a.content_type);
  if (etag_matches(if_none_match, a.etag)) {
    r.status = 304;
    return r;
  }
  r.body = std::string(a.bytes);
  return r;
}

HttpReply json_reply(std::string body) {
  HttpReply r;
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

json::Value number_or_null(double v) { return std::isfinite(v) ? json::Value(v) : json::Value(nullptr); }

json::Value string_array(const std::vector<std::string>& items) {
  json::Value a = json::Value::array();
  for (const std::string& s : items) a.push_back(s);
  return a;
}

std::vector<std::string> class_names_of(const models::LoadedRun& run) {
  std::vector<std::string> names;
  if (const json::Value* data = run.config_json.find("data"))
    if (const json::Value* n = data->find("class_names"); n && n->is_array())
      for (const json::Value& v : n->as_array()) names.push_back(v.is_string() ? v.as_string() : v.dump());
  return names;
}

// The run's test split, prepared with its stored preprocessing, as (N, D) rows and labels.
std::pair<Tensor, std::vector<int64_t>> test_rows(const models::LoadedRun& run, int64_t limit) {
  const models::DataSplit split = models::run_data(run, "");
  const int64_t n = limit > 0 ? std::min(limit, split.test->size()) : split.test->size();
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  const Batch b = split.test->get_batch(idx);
  std::vector<int64_t> labels = b.targets.defined() ? b.targets.to_vector<int64_t>() : std::vector<int64_t>(static_cast<size_t>(n), -1);
  return {b.inputs.contiguous().view({n, -1}), std::move(labels)};
}

}  // namespace

WebUi::WebUi(std::vector<std::shared_ptr<ServedModel>> models, bool key_required)
    : models_(std::move(models)), key_required_(key_required) {
  for (const auto& m : models_) caches_[m->signature().name] = std::make_unique<Cache>();
}

bool WebUi::is_page_path(std::string_view path) {
  return path == "/" || path == "/ui" || (path.substr(0, 4) == "/ui/" && !is_api_path(path));
}

bool WebUi::is_api_path(std::string_view path) { return path.substr(0, kApi.size()) == kApi || path == "/ui/api"; }

const ServedModel* WebUi::page_model(std::string_view name) const {
  for (const auto& m : models_)
    if (m->signature().name == name && !m->is_decoder()) return m.get();
  return nullptr;
}

HttpReply WebUi::page(std::string_view method, std::string_view path, std::string_view if_none_match) const {
  if (method != "GET" && method != "HEAD") return not_allowed(method, path);
  if (path == "/" || path == "/ui" || path == "/ui/") return asset_reply(*find_asset("index.html"), if_none_match);
  if (path == "/ui/auth.json") return json_reply(key_required_ ? R"({"key_required":true})" : R"({"key_required":false})");
  if (path.substr(0, kStatic.size()) == kStatic) {
    const std::string_view file = path.substr(kStatic.size());
    const UiAsset* a = file.find('/') == std::string_view::npos ? find_asset(file) : nullptr;
    if (!a) return json_error(404, fmt::format("no such file of the web page: {}", path));
    return asset_reply(*a, if_none_match);
  }
  const std::string_view name = path.substr(4);
  if (!page_model(name)) {
    std::string names;
    for (const auto& m : models_)
      if (!m->is_decoder()) names += (names.empty() ? "" : ", ") + m->signature().name;
    return json_error(404, fmt::format("no page at {}: '{}' is not a served model with a page (pages: {})", path, name, names));
  }
  return asset_reply(*find_asset("model.html"), if_none_match);
}

HttpReply WebUi::api(std::string_view method, std::string_view path) {
  if (method != "GET" && method != "HEAD") return not_allowed(method, path);
  const std::string_view rest = path.size() > kApi.size() ? path.substr(kApi.size()) : std::string_view();
  if (rest == "models") {
    json::Value list = json::Value::array();
    for (const auto& m : models_) {
      if (m->is_decoder()) continue;
      list.push_back(json::parse(info(*m)));
    }
    json::Value body = json::Value::object();
    body["models"] = std::move(list);
    return json_reply(body.dump());
  }
  const size_t slash = rest.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? std::string_view() : rest.substr(0, slash);
  const std::string_view what = slash == std::string_view::npos ? rest : rest.substr(slash + 1);
  static constexpr std::string_view kWhat[] = {"info", "examples", "scatter", "curve", "config"};
  if (std::find(std::begin(kWhat), std::end(kWhat), what) == std::end(kWhat))
    return json_error(404, fmt::format("no such helper endpoint: {} (use /ui/api/models or /ui/api/NAME/{{info, examples, scatter, "
                                       "curve, config}})", path));
  const ServedModel* m = page_model(name);
  if (!m) return json_error(404, fmt::format("unknown model '{}' in {}", name, path));
  if (what == "info") return json_reply(info(*m));
  const models::InferenceSession* session = m->session();
  if (!session)
    return json_error(404, fmt::format("model '{}' is an .onnx file: it has no run directory, so no {} (only runs trained by latent "
                                       "have test data, metrics.jsonl and config.json)", name, what));
  const models::LoadedRun& run = session->run();
  if (what == "config") return json_reply(run.config_json.dump());
  if (what == "curve") {
    json::Value epochs = json::Value::array();
    std::ifstream in(run.dir + "/metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        epochs.push_back(json::parse(line));
      } catch (const std::exception&) {  // a line cut by an interrupted run: skipped, the rest still shows
      }
    }
    json::Value body = json::Value::object();
    body["epochs"] = std::move(epochs);
    return json_reply(body.dump());
  }
  return json_reply(what == "examples" ? examples(*m) : scatter(*m));
}

std::string WebUi::info(const ServedModel& m) const {
  const ModelSignature& sig = m.signature();
  json::Value v = json::Value::object();
  v["name"] = sig.name;
  v["input"] = sig.input.name;
  v["input_dim"] = sig.input.width;
  json::Value outputs = json::Value::array();
  for (const TensorSpec& o : sig.outputs) outputs.push_back(o.name);
  v["outputs"] = std::move(outputs);
  const models::InferenceSession* s = m.session();
  if (!s) {
    v["kind"] = "onnx";
    v["reason"] =
        "This model is an .onnx file: it carries no run directory, so there is no stored preprocessing, anomaly threshold, test "
        "data, training curve or config to show, and no score output. Send it preprocessed rows through the infer endpoint.";
    return v.dump();
  }
  const models::LoadedRun& run = s->run();
  const models::Preprocessing& p = run.preprocessing;
  const bool image = p.kind == models::Preprocessing::Kind::Image;
  v["kind"] = image ? "image" : "table";
  const json::Value* model = run.config_json.find("model");
  const json::Value* kind = model && model->is_object() ? model->find("model") : nullptr;
  v["model"] = kind && kind->is_string() ? json::Value(kind->as_string()) : json::Value(nullptr);
  v["variational"] = s->variational();
  v["code_dim"] = s->code_dim();
  v["threshold"] = number_or_null(s->threshold());
  v["decoder"] = sig.name + "-decoder";
  v["image_input"] = sig.image_input.has_value();
  v["class_names"] = string_array(class_names_of(run));
  if (image) {
    v["height"] = p.height;
    v["width"] = p.width;
    v["channels"] = p.channels;
  } else {
    json::Value cols = json::Value::array();
    for (size_t j = 0; j < p.columns.size(); ++j) {
      json::Value c = json::Value::object();
      c["name"] = p.columns[j];
      c["min"] = j < p.minimum.size() ? json::Value(p.minimum[j]) : json::Value(nullptr);
      c["max"] = j < p.maximum.size() ? json::Value(p.maximum[j]) : json::Value(nullptr);
      cols.push_back(std::move(c));
    }
    v["columns"] = std::move(cols);
  }
  return v.dump();
}

std::string WebUi::examples(const ServedModel& m) {
  Cache& cache = *caches_.at(m.signature().name);
  std::lock_guard<std::mutex> guard(cache.lock);
  if (!cache.examples.empty()) return cache.examples;
  const models::LoadedRun& run = m.session()->run();
  const models::Preprocessing& p = run.preprocessing;
  auto [rows, labels] = test_rows(run, kExamples);
  const int64_t n = rows.size(0), d = rows.size(1);
  const std::vector<float> x = rows.to_vector<float>();
  json::Value list = json::Value::array();
  for (int64_t i = 0; i < n; ++i) {
    json::Value row = json::Value::array();
    for (int64_t j = 0; j < d; ++j) {
      const double v = x[static_cast<size_t>(i * d + j)];
      if (p.kind == models::Preprocessing::Kind::Image) {
        row.push_back(static_cast<int64_t>(std::lround(v / p.scale)));  // the pixel byte the file held
      } else {  // back to the column's own units (the page's form shows raw values)
        const size_t k = static_cast<size_t>(j);
        const double range = p.maximum[k] - p.minimum[k] > 0 ? p.maximum[k] - p.minimum[k] : 1.0;
        row.push_back(v * range + p.minimum[k]);
      }
    }
    json::Value e = json::Value::object();
    e["index"] = i;
    e["label"] = labels[static_cast<size_t>(i)];
    e["row"] = std::move(row);
    list.push_back(std::move(e));
  }
  json::Value body = json::Value::object();
  body["examples"] = std::move(list);
  cache.examples = body.dump();
  return cache.examples;
}

std::string WebUi::scatter(const ServedModel& m) {
  Cache& cache = *caches_.at(m.signature().name);
  std::lock_guard<std::mutex> guard(cache.lock);
  if (!cache.scatter.empty()) return cache.scatter;
  // Every test sample, as `latent embed` draws them by default; encoded in chunks under the lock.
  auto [rows, labels] = test_rows(m.session()->run(), 0);
  const int64_t n = rows.size(0);
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < n; i += 1024) parts.push_back(m.encode(rows.narrow(0, i, std::min<int64_t>(1024, n - i))));
  const Tensor codes = cat(parts, 0).contiguous();
  const tools::CodePlane plane = tools::principal_plane(codes);
  const std::vector<float> c = codes.to_vector<float>();
  const int64_t d = codes.size(1);
  // Coordinates as the shortest text of their float32 value (half the bytes of doubles).
  std::string xs, ys;
  json::Value ls = json::Value::array();
  auto append = [](std::string& out, double v) {
    if (!out.empty()) out += ',';
    out += std::isfinite(v) ? fmt::format("{}", static_cast<float>(v)) : "null";
  };
  for (int64_t i = 0; i < n; ++i) {
    const auto [x, y] = plane.project(c.data() + i * d);
    append(xs, x);
    append(ys, y);
    ls.push_back(labels[static_cast<size_t>(i)]);
  }
  json::Value mean = json::Value::array(), axes = json::Value::array();
  for (double v : plane.mean) mean.push_back(v);
  for (const auto& axis : plane.axes) {
    json::Value a = json::Value::array();
    for (double v : axis) a.push_back(v);
    axes.push_back(std::move(a));
  }
  json::Value rest = json::Value::object();
  rest["label"] = std::move(ls);
  rest["mean"] = std::move(mean);
  rest["axes"] = std::move(axes);
  rest["class_names"] = string_array(class_names_of(m.session()->run()));
  cache.scatter = "{\"x\":[" + xs + "],\"y\":[" + ys + "]," + rest.dump().substr(1);
  return cache.scatter;
}

}  // namespace latent::serve
