#include "service.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <chrono>

#include "protocol.h"

namespace latent::serve {

namespace {

using Clock = std::chrono::steady_clock;

HttpReply error_reply(int status, std::string_view message) {
  HttpReply r;
  r.status = status;
  r.body = encode_error(message);
  return r;
}

HttpReply method_not_allowed(std::string_view method, std::string_view path, const char* allowed) {
  HttpReply r = error_reply(405, fmt::format("method {} is not allowed on {} (use {})", method, path, allowed));
  r.headers.emplace_back("Allow", allowed);
  return r;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Compares without an early exit, so the time taken does not tell how much of a key was right.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

// "application/json; charset=utf-8" -> "application/json"
std::string media_type(std::string_view header) {
  std::string t(header.substr(0, header.find(';')));
  t.erase(std::remove_if(t.begin(), t.end(), [](unsigned char c) { return std::isspace(c); }), t.end());
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  return t;
}

}  // namespace

struct Service::Context {
  std::string model, endpoint = "other", id;
  int64_t rows = 0;
};

Service::Service(const std::vector<std::shared_ptr<ServedModel>>& models, ServiceOptions options)
    : options_(std::move(options)), ui_(models, !options_.api_key.empty()) {
  if (!options_.access_log.empty()) log_.open(options_.access_log);
  entries_.reserve(models.size());
  for (const auto& m : models) {
    const std::string& name = m->signature().name;
    if (by_name_.count(name)) throw std::runtime_error(fmt::format("[serve] two models are named '{}'", name));
    by_name_[name] = entries_.size();
    entries_.push_back({m, std::make_unique<Batcher>(m, options_.batch, metrics_)});
  }
}

std::vector<std::string> Service::model_names() const {
  std::vector<std::string> names;
  for (const Entry& e : entries_) names.push_back(e.model->signature().name);
  return names;
}

void Service::stop() {
  for (Entry& e : entries_) e.batcher->stop();
}

Service::Entry* Service::find(std::string_view name) {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

HttpReply Service::unknown_model(std::string_view name) const {
  std::string names;
  for (const Entry& e : entries_) names += (names.empty() ? "" : ", ") + e.model->signature().name;
  return error_reply(404, fmt::format("unknown model '{}' (serving: {})", name, names));
}

HttpReply Service::handle(const HttpRequest& request) {
  const auto start = Clock::now();
  Context ctx;
  HttpReply reply;
  try {
    reply = route(request, ctx);
  } catch (const ProtocolError& e) {
    reply = error_reply(e.status, e.message);
  } catch (const std::exception& e) {
    reply = error_reply(500, fmt::format("internal error: {}", e.what()));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  metrics_.count_request(ctx.model, ctx.endpoint, reply.status, seconds);
  log_.write({ctx.id, ctx.model, ctx.endpoint, std::string(request.method), std::string(request.path), reply.status, ctx.rows,
              static_cast<int64_t>(seconds * 1e6)});
  return reply;
}

void Service::transport_reply(std::string_view method, std::string_view path, HttpReply& reply) {
  if (reply.body.empty()) {
    const char* what = reply.status == 413 ? "the request body is larger than --max-body-mb"
                       : reply.status == 400 ? "malformed HTTP request"
                                             : "the request could not be read";
    reply.body = encode_error(fmt::format("{} (HTTP {})", what, reply.status));
  }
  metrics_.count_request("", "transport", reply.status, 0.0);
  log_.write({"", "", "transport", std::string(method), std::string(path), reply.status, 0, 0});
}

HttpReply Service::route(const HttpRequest& request, Context& ctx) {
  const std::string_view path = request.path, method = request.method;
  const bool get = method == "GET" || method == "HEAD", post = method == "POST";
  if (path == "/v2/health/live" || path == "/v2/health/ready") {
    ctx.endpoint = "health";
    if (!get) return method_not_allowed(method, path, "GET");
    HttpReply r;
    r.body = path == "/v2/health/live" ? R"({"live":true})" : R"({"ready":true})";
    return r;
  }
  // The web page and its files need no key (the page asks for it); its data under /ui/api/ does.
  if (WebUi::is_page_path(path)) {
    ctx.endpoint = "ui";
    return ui_.page(method, path, request.if_none_match);
  }
  if (!options_.api_key.empty() && !same_secret(request.authorization, "Bearer " + options_.api_key)) {
    HttpReply r = error_reply(401, request.authorization.empty() ? "missing 'Authorization: Bearer KEY' header"
                                                                 : "the API key in the Authorization header is wrong");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  if (WebUi::is_api_path(path)) {
    ctx.endpoint = "ui_api";
    return ui_.api(method, path);
  }
  if (path == "/metrics") {
    ctx.endpoint = "metrics";
    if (!get) return method_not_allowed(method, path, "GET");
    HttpReply r;
    r.body = metrics_.render();
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }
  if (path == "/v2" || path == "/v2/") {
    ctx.endpoint = "server_metadata";
    if (!get) return method_not_allowed(method, path, "GET");
    HttpReply r;
    r.body = encode_server_metadata();
    return r;
  }
  constexpr std::string_view v2 = "/v2/models/", v1 = "/v1/models/";
  if (path.substr(0, v2.size()) == v2) {
    std::string_view rest = path.substr(v2.size());
    std::string_view action;
    if (ends_with(rest, "/infer")) action = "infer";
    else if (ends_with(rest, "/ready")) action = "ready";
    const std::string_view name = action.empty() ? rest : rest.substr(0, rest.size() - action.size() - 1);
    ctx.endpoint = action.empty() ? "model_metadata" : action == "infer" ? "infer" : "model_ready";
    ctx.model = std::string(name);
    Entry* entry = find(name);
    if (!entry) return unknown_model(name);
    if (action == "infer") return post ? infer(request, *entry, false, ctx) : method_not_allowed(method, path, "POST");
    if (!get) return method_not_allowed(method, path, "GET");
    HttpReply r;
    r.body = action.empty() ? encode_model_metadata(entry->model->signature())
                            : fmt::format(R"({{"name":{},"ready":true}})", json_quote(name));
    return r;
  }
  if (path.substr(0, v1.size()) == v1) {
    std::string_view rest = path.substr(v1.size());
    const bool predict = ends_with(rest, ":predict");
    const std::string_view name = predict ? rest.substr(0, rest.size() - 8) : rest;
    ctx.endpoint = predict ? "v1_predict" : "v1_model";
    ctx.model = std::string(name);
    Entry* entry = find(name);
    if (!entry) return unknown_model(name);
    if (predict) return post ? infer(request, *entry, true, ctx) : method_not_allowed(method, path, "POST");
    if (!get) return method_not_allowed(method, path, "GET");
    HttpReply r;
    r.body = fmt::format(R"({{"name":{},"ready":true}})", json_quote(name));
    return r;
  }
  ctx.endpoint = "unknown";
  return error_reply(404, fmt::format("no such endpoint: {} {}", method, path));
}

HttpReply Service::infer(const HttpRequest& request, Entry& entry, bool v1, Context& ctx) {
  // Triton's binary extension: the JSON header's length; its bodies may be application/octet-stream.
  std::optional<size_t> header_length;
  if (!v1 && !request.inference_header_length.empty()) {
    size_t n = 0;
    const std::string_view h = request.inference_header_length;
    const auto [end, error] = std::from_chars(h.data(), h.data() + h.size(), n);
    if (error != std::errc() || end != h.data() + h.size())
      return error_reply(400, fmt::format("Inference-Header-Content-Length '{}' is not a byte count", h));
    header_length = n;
  }
  const std::string type = media_type(request.content_type);
  if (!type.empty() && type != "application/json" && !(header_length && type == "application/octet-stream"))
    return error_reply(415, fmt::format("unsupported content type '{}': send application/json{}", request.content_type,
                                        v1 ? "" : " (or application/octet-stream with Inference-Header-Content-Length)"));
  const ModelSignature& sig = entry.model->signature();
  Batcher& batcher = *entry.batcher;
  // Announced before parsing, so the batcher waits for this request's rows while it gathers.
  batcher.announce();
  InferRequest r;
  std::vector<OutputRows> outputs;
  bool announced = true;
  try {
    r = v1 ? parse_v1_predict(request.body, sig) : parse_v2_infer(request.body, sig, header_length);
    if (r.id) ctx.id = *r.id;
    ctx.rows = r.rows;
    if (!r.images.empty()) {  // PNG files become raw pixel rows here (decoding, not a kernel)
      r.values = entry.model->pixels_from_png(r.images);
      r.preprocessed = false;
    }
    announced = false;  // infer takes the announce back, whatever it throws
    outputs = batcher.infer(std::move(r.values), r.rows, r.preprocessed);
  } catch (const Overloaded& o) {
    HttpReply reply = error_reply(503, fmt::format("model '{}' is overloaded: {} rows are waiting (--max-queue {}); retry later",
                                                   sig.name, o.queued_rows, options_.batch.max_queue));
    reply.headers.emplace_back("Retry-After", "1");
    return reply;
  } catch (...) {
    if (announced) batcher.withdraw();
    throw;
  }
  if (const int s = entry.model->score_output(); s >= 0) {
    const std::vector<float>& flags = outputs[static_cast<size_t>(entry.model->anomaly_output())].values;
    metrics_.observe_scores(sig.name, outputs[static_cast<size_t>(s)].values, std::count(flags.begin(), flags.end(), 1.0f));
  }
  HttpReply reply;
  if (v1) {
    reply.body = encode_v1_predict(sig, r.rows, outputs);
    return reply;
  }
  InferReply encoded = encode_v2_infer(sig, r, outputs);
  reply.body = std::move(encoded.body);
  if (encoded.header_length) {
    reply.content_type = "application/octet-stream";
    reply.headers.emplace_back("Inference-Header-Content-Length", std::to_string(*encoded.header_length));
  }
  return reply;
}

}  // namespace latent::serve
