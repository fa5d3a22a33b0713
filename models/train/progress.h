// A training progress bar: epoch, batch i/n, running loss, samples/s and ETA.
//
// On a terminal it redraws one line in place ("\r" + erase to end of line), at most every
// redraw_interval_s; otherwise (a file, a pipe, CI logs) it prints a plain line at most every
// line_interval_s. Both print one final line per epoch:
//
//   epoch 2/10 [##########..............] 190/469 loss 0.03124 5.2k samples/s ETA 0:07   (terminal)
//   epoch 2/10 batch 190/469 loss 0.03124 5.2k samples/s ETA 0:07                          (lines)
//   epoch 2/10 done 469/469 loss 0.02981 5.3k samples/s 0:11 val_loss 0.0301               (end of epoch)
//
//   latent::ProgressBar bar(epochs, loader.num_batches());
//   for (int64_t e = 0; e < epochs; ++e) {
//     bar.start_epoch(e);
//     for (auto& [x, y] : loader) { ...; bar.update(loss.item<double>(), x.size(0)); }
//     bar.end_epoch();
//   }
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

namespace latent {

/// How a ProgressBar draws.
struct ProgressOptions {
  /// Auto: Terminal when the output is a terminal (isatty, and TERM is not "dumb"), else Lines.
  enum class Mode { Auto, Terminal, Lines };
  Mode mode = Mode::Auto;          ///< Lines forces plain lines (no "\r"), e.g. for tests and logs
  double line_interval_s = 10.0;   ///< Lines: at most one progress line per interval
  double redraw_interval_s = 0.1;  ///< Terminal: at most one redraw per interval
  int bar_width = 24;              ///< Terminal: characters inside the brackets
  std::function<double()> clock;   ///< seconds from any origin; default: steady_clock (tests pass a fake)
};

/// Progress of a training run over epochs of a fixed number of batches.
class ProgressBar {
 public:
  /// Writes to a FILE* (stderr by default).
  ProgressBar(int64_t num_epochs, int64_t batches_per_epoch, FILE* out = stderr, ProgressOptions options = {});
  /// Writes to a stream (std::cout and std::cerr are checked with isatty; other streams are not terminals).
  ProgressBar(int64_t num_epochs, int64_t batches_per_epoch, std::ostream& out, ProgressOptions options = {});

  /// Starts epoch `epoch` (0-based; printed 1-based as "epoch 1/10") and resets its counters.
  void start_epoch(int64_t epoch);
  /// Records one finished batch: its mean loss and number of samples; redraws or prints when due.
  void update(double loss, int64_t samples);
  /// Prints the epoch's final line, with `extra` appended (e.g. "val_loss 0.0301").
  void end_epoch(std::string_view extra = {});

  /// Whether it redraws in place (Terminal mode).
  bool is_terminal() const { return terminal_; }
  /// The running mean loss of the epoch, weighted by samples.
  double mean_loss() const { return samples_ ? loss_sum_ / static_cast<double>(samples_) : 0.0; }
  /// Samples per second in this epoch.
  double samples_per_second() const;

  /// "0:07", "12:05", "1:02:03".
  static std::string format_duration(double seconds);
  /// "950", "5.2k", "1.25M".
  static std::string format_rate(double per_second);

 private:
  void init(ProgressOptions options);
  double now() const;
  std::string status(bool final) const;
  void draw(bool final);

  int64_t num_epochs_, batches_;
  std::function<void(std::string_view)> write_;
  ProgressOptions options_;
  bool terminal_ = false;
  int64_t epoch_ = 0, done_ = 0, samples_ = 0;
  double loss_sum_ = 0, start_ = 0, last_draw_ = 0;
  size_t last_width_ = 0;
};

}  // namespace latent
