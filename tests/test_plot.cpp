// The SVG plots of the `latent` command (tools/plot.h): round tick values on both axes, a log axis
// where the values span decades, markers on short series, and the ROC curve's points.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "models/train/run.h"
#include "tools/plot.h"

using latent::tools::axis_ticks;
using latent::tools::Plot;
using latent::tools::Series;
using latent::tools::tick_label;

namespace {
size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}
}  // namespace

TEST_CASE("plot: linear ticks are round steps that enclose the data") {
  const std::vector<double> t = axis_ticks(0.013, 0.052, false);
  REQUIRE(t.size() == 6);
  CHECK(t.front() == doctest::Approx(0.01));
  CHECK(t.back() == doctest::Approx(0.06));
  CHECK(t[1] - t[0] == doctest::Approx(0.01));
  const std::vector<double> e = axis_ticks(1, 10, false);  // epochs 1..10: steps of 2
  CHECK(e == std::vector<double>{0, 2, 4, 6, 8, 10});
  const std::vector<double> one = axis_ticks(3, 3, false);  // one value still gets a range
  CHECK(one.front() < 3);
  CHECK(one.back() > 3);
  CHECK(tick_label(0.02, 0.01) == "0.02");
  CHECK(tick_label(250, 50) == "250");
  CHECK(tick_label(2.5e-5, 1e-5) == "2.5e-05");
  CHECK(tick_label(0, 0.5) == "0");
}

TEST_CASE("plot: log ticks are powers of ten, with 2x and 5x over a short range") {
  CHECK(axis_ticks(0.03, 240, true) == std::vector<double>{0.01, 0.1, 1, 10, 100, 1000});
  const std::vector<double> t = axis_ticks(12, 250, true);
  REQUIRE(t.size() == 6);
  CHECK(t[0] == doctest::Approx(10));
  CHECK(t[1] == doctest::Approx(20));
  CHECK(t[5] == doctest::Approx(500));
}

TEST_CASE("plot: an SVG has tick labels on both axes, a log axis when asked by the data, markers on short series") {
  Plot p;
  p.title = "a <title>";
  p.x_label = "epoch";
  p.y_label = "loss";
  p.series.push_back(Series{.x = {1, 2, 3}, .y = {300, 40, 2}, .name = "test loss"});
  p.auto_log_y();
  CHECK(p.log_y);
  const std::string svg = p.svg();
  CHECK(svg.find("a &lt;title&gt;") != std::string::npos);
  CHECK(svg.find("(log scale)") != std::string::npos);
  CHECK(svg.find(">100</text>") != std::string::npos);
  CHECK(svg.find(">1000</text>") != std::string::npos);
  CHECK(svg.find(">1.0</text>") != std::string::npos);       // x ticks 1.0 .. 3.0 in steps of 0.5
  CHECK(count(svg, "<circle") == 3 + 1);                      // a marker per point and the legend's
  CHECK(count(svg, "<polyline") == 1);

  Plot flat;
  flat.series.push_back(Series{.x = {1, 2}, .y = {0.05, 0.04}});
  flat.auto_log_y();
  CHECK_FALSE(flat.log_y);
}

TEST_CASE("plot: the ROC curve steps through each distinct score, ties together") {
  // Scores (high = anomalous) for 2 positives and 3 negatives; one positive ties a negative.
  const std::vector<double> scores{0.9, 0.5, 0.5, 0.2, 0.1};
  const std::vector<bool> positive{true, true, false, false, false};
  const auto [fpr, tpr] = latent::models::roc_curve(scores, positive);
  CHECK(fpr == std::vector<double>{0, 0, 1.0 / 3, 2.0 / 3, 1});
  CHECK(tpr == std::vector<double>{0, 0.5, 1, 1, 1});
  // The trapezoid area under these points is the AUC roc_auc computes (ties count half).
  double area = 0;
  for (size_t i = 1; i < fpr.size(); ++i) area += (fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2;
  CHECK(area == doctest::Approx(latent::models::roc_auc(scores, positive)));
  CHECK(area == doctest::Approx(5.5 / 6));
  CHECK_THROWS_WITH(latent::models::roc_curve({0.1, 0.2}, {false, false}),
                    "[roc_curve] needs both positives and negatives; got 0 and 2");
}
