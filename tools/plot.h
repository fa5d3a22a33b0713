// SVG plots the `latent` command draws (loss curves, ROC curves, code scatters): small,
// dependency-free files with value ticks and gridlines on both axes, markers where a series has
// few points, and a log y axis where the values span more than a factor of 20.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace latent::tools {

/// Tick positions for an axis over [lo, hi]: about `target` round values (1, 2 or 5 times a power
/// of ten) covering the range, in increasing order. For a log axis (lo > 0): the powers of ten in
/// range, with 2x and 5x of each when the range spans fewer than three decades.
std::vector<double> axis_ticks(double lo, double hi, bool log, int target = 6);

/// A tick's label: as few digits as tell neighbouring ticks apart ("0.02", "1e+04", "250").
std::string tick_label(double v, double step);

/// One line or point series of a plot.
struct Series {
  std::vector<double> x, y;
  std::string name;               ///< the legend entry ("" for none)
  std::string color;              ///< "" picks the next of the palette
  bool line = true;               ///< draw a polyline through the points
  bool markers = false;           ///< draw a circle at each point (always when a line has <= 30 points)
  double marker_radius = 3;
  double opacity = 1;
  bool dashed = false;
};

/// A 2-D plot: axes with ticks, gridlines, axis labels, a legend and its series.
struct Plot {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_y = false;             ///< set by auto_log_y() or by hand
  bool legend_outside = false;    ///< legend in a column right of the axes (for many classes)
  double width = 640, height = 420;

  /// Makes the y axis logarithmic when every y is positive and max / min > 20.
  void auto_log_y();
  /// The SVG document.
  std::string svg() const;
  /// Writes svg() to `path` atomically.
  void write(const std::string& path) const;
};

/// latent train's loss.svg: the training loss per step (smoothed, over fractional epochs: each
/// epoch's `train_curve` points spread across it) beside the per-epoch training and test loss.
void write_loss_svg(const std::string& path, const std::vector<std::vector<double>>& train_curve,
                    const std::vector<double>& train, const std::vector<double>& test, const std::string& title);

/// A 2-D scatter of points coloured by class (labels < 0: one grey series) with a legend of class names.
void write_scatter_svg(const std::string& path, const std::vector<double>& x, const std::vector<double>& y,
                       const std::vector<int64_t>& labels, const std::vector<std::string>& class_names,
                       const std::string& title);

/// An ROC curve from (false positive rate, true positive rate) points, with the chance diagonal.
void write_roc_svg(const std::string& path, const std::vector<double>& fpr, const std::vector<double>& tpr, double auc,
                   const std::string& title);

}  // namespace latent::tools
