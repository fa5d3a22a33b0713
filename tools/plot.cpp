#include "plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "latent.h"

namespace latent::tools {

namespace {

const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

/// 1, 2 or 5 times a power of ten, the nearest above or at `x` (x > 0).
double nice_step(double x) {
  const double e = std::floor(std::log10(x));
  const double base = std::pow(10.0, e), f = x / base;
  const double m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return m * base;
}

/// The [lo, hi] of the finite values of some series' x or y.
std::pair<double, double> extent(const std::vector<Series>& series, bool y) {
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : series)
    for (double v : y ? s.y : s.x)
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  if (!(lo <= hi)) return {0, 1};
  return {lo, hi};
}

}  // namespace

std::vector<double> axis_ticks(double lo, double hi, bool log, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  if (lo > hi) std::swap(lo, hi);
  if (log && lo > 0) {
    int e0 = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
    int e1 = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
    if (e1 <= e0) e1 = e0 + 1;
    std::vector<double> ticks;
    if (e1 - e0 < 3) {
      std::vector<double> all;
      for (int e = e0; e <= e1; ++e)
        for (double m : {1.0, 2.0, 5.0}) all.push_back(m * std::pow(10.0, e));
      // The largest candidate at or below lo through the smallest at or above hi.
      size_t first = 0, last = all.size() - 1;
      for (size_t i = 0; i < all.size(); ++i)
        if (all[i] <= lo * (1 + 1e-9)) first = i;
      for (size_t i = all.size(); i-- > 0;)
        if (all[i] >= hi * (1 - 1e-9)) last = i;
      return {all.begin() + static_cast<std::ptrdiff_t>(first), all.begin() + static_cast<std::ptrdiff_t>(last) + 1};
    }
    const int stride = std::max(1, (e1 - e0 + 7) / 8);
    for (int e = e0; e <= e1; e += stride) ticks.push_back(std::pow(10.0, e));
    if (ticks.back() < hi) ticks.push_back(std::pow(10.0, e0 + ((e1 - e0 + stride - 1) / stride) * stride));
    return ticks;
  }
  if (hi - lo <= std::abs(hi) * 1e-12) {  // one value: a unit-wide range around it
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double step = nice_step((hi - lo) / std::max(1, target - 1));
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double k = first; k <= last + 0.5; ++k) ticks.push_back(k * step == 0 ? 0.0 : k * step);
  return ticks;
}

std::string tick_label(double v, double step) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e5 || a < 1e-3) return fmt::format("{:.3g}", v);
  const int decimals = std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 6);
  return fmt::format("{:.{}f}", v, decimals);
}

void Plot::auto_log_y() {
  double lo = INFINITY, hi = 0;
  for (const Series& s : series)
    for (double v : s.y) {
      if (!std::isfinite(v)) continue;
      if (v <= 0) return;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  log_y = hi > 0 && hi / lo > 20;
}

std::string Plot::svg() const {
  const double legend_w = legend_outside ? 140 : 0;
  const double left = 72, right = 20 + legend_w, top = 40, bottom = 52;
  const double pw = width - left - right, ph = height - top - bottom;
  const auto [xlo_data, xhi_data] = extent(series, false);
  const auto [ylo_data, yhi_data] = extent(series, true);
  const std::vector<double> xt = axis_ticks(xlo_data, xhi_data, false);
  const bool log = log_y && ylo_data > 0;
  const std::vector<double> yt = axis_ticks(ylo_data, yhi_data, log);
  const double x0 = xt.front(), x1 = xt.back();
  const double y0 = log ? std::log10(yt.front()) : yt.front(), y1 = log ? std::log10(yt.back()) : yt.back();
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + (y1 - (log ? std::log10(y) : y)) / (y1 - y0) * ph; };

  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<title>{}</title>\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"24\" font-size=\"15\">{}</text>\n",
      width, height, width, height, escape(title), left, escape(title));
  // Gridlines and tick labels.
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
  for (double t : xt)
    s += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
        px(t), top, top + ph + 4, top + ph + 18, tick_label(t, xstep));
  for (size_t i = 0; i < yt.size(); ++i) {
    const double t = yt[i];
    const std::string label = log ? fmt::format("{:g}", t) : tick_label(t, yt.size() > 1 ? yt[1] - yt[0] : 1);
    s += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
        "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
        left - 4, py(t), left + pw, left - 7, py(t) + 4, label);
  }
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n", left, top,
                   pw, ph);
  s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", left + pw / 2, height - 12,
                   escape(x_label));
  s += fmt::format(
      "<text x=\"16\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0:.1f})\">{1}{2}</text>\n",
      top + ph / 2, escape(y_label), log ? " (log scale)" : "");
  // Series, then the legend.
  size_t palette = 0;
  std::vector<std::pair<std::string, std::string>> legend;
  for (const Series& se : series) {
    const std::string color = se.color.empty() ? kPalette[palette++ % 10] : se.color;
    const size_t n = std::min(se.x.size(), se.y.size());
    if (se.line && n > 1) {
      std::string points;
      for (size_t i = 0; i < n; ++i)
        if (std::isfinite(se.y[i]) && (!log || se.y[i] > 0))
          points += fmt::format("{:.1f},{:.1f} ", px(se.x[i]), py(se.y[i]));
      s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n", color,
                       se.dashed ? " stroke-dasharray=\"5,4\"" : "", points);
    }
    if (se.marker_radius > 0 && (se.markers || !se.line || n <= 30))
      for (size_t i = 0; i < n; ++i)
        if (std::isfinite(se.y[i]) && (!log || se.y[i] > 0))
          s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\"{}/>\n", px(se.x[i]), py(se.y[i]),
                           se.marker_radius, color,
                           se.opacity < 1 ? fmt::format(" fill-opacity=\"{}\"", se.opacity) : std::string());
    if (!se.name.empty()) legend.emplace_back(se.name, color);
  }
  const double lx = legend_outside ? width - legend_w + 6 : left + pw - 214;
  if (!legend.empty() && !legend_outside)
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"206\" height=\"{}\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n",
                     lx - 6, top + 6, 18 * static_cast<double>(legend.size()) + 8);
  for (size_t i = 0; i < legend.size(); ++i) {
    const double ly = top + 20 + 18 * static_cast<double>(i);
    s += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n", lx + 4,
                     ly - 4, legend[i].second, lx + 14, ly, escape(legend[i].first));
  }
  s += "</svg>\n";
  return s;
}

void Plot::write(const std::string& path) const { write_file_atomic(path, svg()); }

void write_loss_svg(const std::string& path, const std::vector<std::vector<double>>& train_curve,
                    const std::vector<double>& train, const std::vector<double>& test, const std::string& title) {
  Plot p;
  p.title = title;
  p.x_label = "epoch";
  p.y_label = "loss";
  Series steps{.name = "train loss (per step, smoothed)", .color = "#9ecae1"};
  for (size_t e = 0; e < train_curve.size(); ++e) {
    const size_t k = train_curve[e].size();
    for (size_t j = 0; j < k; ++j) {
      steps.x.push_back(static_cast<double>(e) + (static_cast<double>(j) + 0.5) / static_cast<double>(k));
      steps.y.push_back(train_curve[e][j]);
    }
  }
  steps.markers = false;
  if (!steps.x.empty()) {
    steps.line = steps.x.size() > 1;
    steps.marker_radius = 2;
    p.series.push_back(std::move(steps));
  }
  Series tr{.name = "train loss (epoch mean)", .color = kPalette[0]}, te{.name = "test loss", .color = kPalette[1]};
  for (size_t i = 0; i < train.size(); ++i) {
    tr.x.push_back(static_cast<double>(i + 1));
    tr.y.push_back(train[i]);
  }
  for (size_t i = 0; i < test.size(); ++i) {
    te.x.push_back(static_cast<double>(i + 1));
    te.y.push_back(test[i]);
  }
  p.series.push_back(std::move(tr));
  p.series.push_back(std::move(te));
  p.auto_log_y();
  p.write(path);
}

void write_scatter_svg(const std::string& path, const std::vector<double>& x, const std::vector<double>& y,
                       const std::vector<int64_t>& labels, const std::vector<std::string>& class_names,
                       const std::string& title) {
  Plot p;
  p.title = title;
  p.x_label = "component 1";
  p.y_label = "component 2";
  p.width = 700;
  p.height = 560;
  p.legend_outside = true;
  const size_t classes = std::max<size_t>(class_names.size(), 1);
  std::vector<Series> by_class(classes + 1);
  for (size_t c = 0; c < by_class.size(); ++c) {
    Series& s = by_class[c];
    s.line = false;
    s.marker_radius = 1.8;
    s.opacity = 0.6;
    s.color = c < classes ? kPalette[c % 10] : "#999";
    s.name = c < class_names.size() ? class_names[c] : c == classes ? "unlabelled" : "";
  }
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    const int64_t l = i < labels.size() ? labels[i] : -1;
    const size_t c = l >= 0 && static_cast<size_t>(l) < classes ? static_cast<size_t>(l) : classes;
    by_class[c].x.push_back(x[i]);
    by_class[c].y.push_back(y[i]);
  }
  for (Series& s : by_class)
    if (!s.x.empty()) p.series.push_back(std::move(s));
  p.write(path);
}

void write_roc_svg(const std::string& path, const std::vector<double>& fpr, const std::vector<double>& tpr, double auc,
                   const std::string& title) {
  Plot p;
  p.title = fmt::format("{} (AUC {:.4f})", title, auc);
  p.x_label = "false positive rate";
  p.y_label = "true positive rate";
  p.width = 520;
  p.height = 500;
  p.series.push_back(Series{.x = {0, 1}, .y = {0, 1}, .name = "chance", .color = "#999", .dashed = true});
  p.series.back().markers = false;
  p.series.back().marker_radius = 0;
  p.series.push_back(Series{.x = fpr, .y = tpr, .name = "ROC", .color = kPalette[3]});
  p.write(path);
}

}  // namespace latent::tools
