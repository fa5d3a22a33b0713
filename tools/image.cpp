#include "image.h"

#include <algorithm>
#include <cmath>

namespace latent::tools {

void write_png_gray(const std::string& path, const std::vector<float>& pixels, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0 || static_cast<int64_t>(pixels.size()) != width * height)
    fail("png", "{}: {} pixels do not make a {}x{} image", path, pixels.size(), width, height);
  GrayImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i)
    image.pixels[i] = static_cast<uint8_t>(std::lround(std::clamp(pixels[i], 0.0f, 1.0f) * 255.0f));
  write_png(path, image);
}

void write_image_grid(const std::string& path, const Tensor& images, int64_t height, int64_t width, int64_t columns) {
  const int64_t n = images.size(0);
  if (images.dim() != 2 || images.size(1) != height * width)
    fail("png", "{}: expected images of shape [N, {}]; got {}", path, height * width, images.shape());
  const int64_t cols = std::max<int64_t>(1, std::min(columns, n));
  const int64_t rows = (n + cols - 1) / cols, gap = 2;
  const int64_t W = cols * width + (cols + 1) * gap, H = rows * height + (rows + 1) * gap;
  std::vector<float> canvas(static_cast<size_t>(W * H), 0.25f);
  std::vector<float> values = images.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = gap + (i / cols) * (height + gap), left = gap + (i % cols) * (width + gap);
    for (int64_t r = 0; r < height; ++r)
      for (int64_t c = 0; c < width; ++c)
        canvas[static_cast<size_t>((top + r) * W + left + c)] = values[static_cast<size_t>(i * height * width + r * width + c)];
  }
  write_png_gray(path, canvas, W, H);
}

namespace {
const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}
}  // namespace

void write_loss_svg(const std::string& path, const std::vector<double>& train, const std::vector<double>& test,
                    const std::string& title) {
  const double W = 640, H = 400, left = 70, right = 20, top = 40, bottom = 50;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto* series : {&train, &test})
    for (double v : *series) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (!(hi > lo)) {
    hi = lo + 1;
  }
  const size_t n = std::max(train.size(), test.size());
  auto px = [&](size_t i) { return left + (n > 1 ? static_cast<double>(i) / static_cast<double>(n - 1) : 0.5) * (W - left - right); };
  auto py = [&](double v) { return top + (hi - v) / (hi - lo) * (H - top - bottom); };
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"24\" font-size=\"15\">{}</text>\n"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n"
      "<text x=\"5\" y=\"{}\">{:.4g}</text><text x=\"5\" y=\"{}\">{:.4g}</text>\n"
      "<text x=\"{}\" y=\"{}\">epoch</text>\n",
      W, H, left, escape(title), left, H - bottom, W - right, H - bottom, left, top, left, H - bottom, top + 4, hi,
      H - bottom, lo, W / 2, H - 15);
  auto polyline = [&](const std::vector<double>& v, const char* color, const char* name, double legend_y) {
    if (v.empty()) return;
    std::string points;
    for (size_t i = 0; i < v.size(); ++i) points += fmt::format("{:.1f},{:.1f} ", px(i), py(v[i]));
    svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n", color, points);
    svg += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>\n", W - 140, legend_y, color, name);
  };
  polyline(train, kPalette[0], "train loss", top + 10);
  polyline(test, kPalette[1], "test loss", top + 26);
  svg += "</svg>\n";
  write_file_atomic(path, svg);
}

void write_scatter_svg(const std::string& path, const std::vector<double>& x, const std::vector<double>& y,
                       const std::vector<int64_t>& labels, const std::vector<std::string>& class_names,
                       const std::string& title) {
  const double W = 640, H = 560, margin = 40, legend = 130;
  const auto [xlo, xhi] = std::minmax_element(x.begin(), x.end());
  const auto [ylo, yhi] = std::minmax_element(y.begin(), y.end());
  const double x0 = x.empty() ? 0 : *xlo, x1 = x.empty() ? 1 : std::max(*xhi, *xlo + 1e-9);
  const double y0 = y.empty() ? 0 : *ylo, y1 = y.empty() ? 1 : std::max(*yhi, *ylo + 1e-9);
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"24\" font-size=\"15\">{}</text>\n",
      W, H, margin, escape(title));
  for (size_t i = 0; i < x.size(); ++i) {
    const double px = margin + (x[i] - x0) / (x1 - x0) * (W - 2 * margin - legend);
    const double py = margin + (y1 - y[i]) / (y1 - y0) * (H - 2 * margin);
    const int64_t l = i < labels.size() ? labels[i] : 0;
    svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"1.6\" fill=\"{}\" fill-opacity=\"0.6\"/>\n", px, py,
                       kPalette[((l % 10) + 10) % 10]);
  }
  for (size_t c = 0; c < class_names.size() && c < 10; ++c)
    svg += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
                       W - legend + 5, margin + 20 * static_cast<double>(c), kPalette[c], W - legend + 15,
                       margin + 20 * static_cast<double>(c) + 4, escape(class_names[c]));
  svg += "</svg>\n";
  write_file_atomic(path, svg);
}

}  // namespace latent::tools
