// Training progress bar. See progress.h.
#include "progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "../../autograd/error.h"

namespace latent {

namespace {

bool term_is_dumb() {
  const char* term = std::getenv("TERM");
  return term && std::strcmp(term, "dumb") == 0;
}

}  // namespace

ProgressBar::ProgressBar(int64_t num_epochs, int64_t batches_per_epoch, FILE* out, ProgressOptions options)
    : num_epochs_(num_epochs), batches_(batches_per_epoch) {
  if (!out) fail("progress", "output FILE* is null");
  write_ = [out](std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), out);
    std::fflush(out);
  };
  terminal_ = ::isatty(::fileno(out)) == 1;
  init(std::move(options));
}

ProgressBar::ProgressBar(int64_t num_epochs, int64_t batches_per_epoch, std::ostream& out, ProgressOptions options)
    : num_epochs_(num_epochs), batches_(batches_per_epoch) {
  write_ = [&out](std::string_view s) {
    out << s;
    out.flush();
  };
  terminal_ = (&out == &std::cout && ::isatty(1) == 1) ||
              ((&out == &std::cerr || &out == &std::clog) && ::isatty(2) == 1);
  init(std::move(options));
}

void ProgressBar::init(ProgressOptions options) {
  if (num_epochs_ < 1 || batches_ < 0)
    fail("progress", "need at least 1 epoch and non-negative batches; got {} epochs, {} batches", num_epochs_,
         batches_);
  options_ = std::move(options);
  if (!options_.clock) {
    options_.clock = [] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    };
  }
  if (options_.mode == ProgressOptions::Mode::Terminal) terminal_ = true;
  if (options_.mode == ProgressOptions::Mode::Lines) terminal_ = false;
  if (options_.mode == ProgressOptions::Mode::Auto && term_is_dumb()) terminal_ = false;
  start_ = last_draw_ = now();
}

double ProgressBar::now() const { return options_.clock(); }

void ProgressBar::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  done_ = samples_ = 0;
  loss_sum_ = 0;
  start_ = last_draw_ = now();
  if (terminal_) draw(false);
}

void ProgressBar::update(double loss, int64_t samples) {
  ++done_;
  samples_ += samples;
  loss_sum_ += loss * static_cast<double>(samples);
  const double t = now();
  const double interval = terminal_ ? options_.redraw_interval_s : options_.line_interval_s;
  if (t - last_draw_ >= interval) {
    last_draw_ = t;
    draw(false);
  }
}

void ProgressBar::end_epoch(std::string_view extra) {
  std::string line = status(true);
  if (!extra.empty()) line += fmt::format(" {}", extra);
  if (terminal_) {
    const size_t pad = last_width_ > line.size() ? last_width_ - line.size() : 0;
    write_(fmt::format("\r{}{}\n", line, std::string(pad, ' ')));
    last_width_ = 0;
  } else {
    write_(line + "\n");
  }
}

double ProgressBar::samples_per_second() const {
  const double elapsed = now() - start_;
  return elapsed > 0 ? static_cast<double>(samples_) / elapsed : 0.0;
}

std::string ProgressBar::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  return h ? fmt::format("{}:{:02}:{:02}", h, m, s) : fmt::format("{}:{:02}", m, s);
}

std::string ProgressBar::format_rate(double per_second) {
  if (per_second >= 1e6) return fmt::format("{:.2f}M", per_second / 1e6);
  if (per_second >= 1e3) return fmt::format("{:.1f}k", per_second / 1e3);
  return fmt::format("{:.0f}", per_second);
}

std::string ProgressBar::status(bool final) const {
  const std::string epoch = fmt::format("epoch {}/{}", epoch_ + 1, num_epochs_);
  std::string where;
  if (final) {
    where = fmt::format("done {}/{}", done_, batches_);
  } else if (terminal_) {
    const int width = std::max(options_.bar_width, 1);
    const int filled = batches_ ? static_cast<int>(width * std::min(done_, batches_) / batches_) : width;
    where = fmt::format("[{}{}] {}/{}", std::string(static_cast<size_t>(filled), '#'),
                        std::string(static_cast<size_t>(width - filled), '.'), done_, batches_);
  } else {
    where = fmt::format("batch {}/{}", done_, batches_);
  }
  std::string line = fmt::format("{} {}", epoch, where);
  if (done_ == 0) return line;
  line += fmt::format(" loss {:.4g} {} samples/s", mean_loss(), format_rate(samples_per_second()));
  const double elapsed = now() - start_;
  if (final)
    line += fmt::format(" {}", format_duration(elapsed));
  else
    line += fmt::format(" ETA {}", format_duration(elapsed / static_cast<double>(done_) *
                                                   static_cast<double>(std::max<int64_t>(batches_ - done_, 0))));
  return line;
}

void ProgressBar::draw(bool final) {
  const std::string line = status(final);
  if (terminal_) {
    // Erase what is left of a longer previous line ("\x1b[K" is erase to end of line).
    write_(fmt::format("\r{}\x1b[K", line));
    last_width_ = line.size();
  } else {
    write_(line + "\n");
  }
}

}  // namespace latent
