// Grad mode (thread-local, RAII guards) and anomaly mode.
#pragma once

namespace latent {

/// Whether ops record autograd nodes on this thread (true by default).
bool is_grad_enabled();
/// Turns recording on or off for this thread (prefer NoGradGuard, which restores it).
void set_grad_enabled(bool enabled);

/// Disables recording for its scope on this thread: `{ latent::NoGradGuard g; ... }`.
class NoGradGuard {
 public:
  NoGradGuard() : previous_(is_grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

/// Re-enables recording inside a NoGradGuard scope.
class EnableGradGuard {
 public:
  EnableGradGuard() : previous_(is_grad_enabled()) { set_grad_enabled(true); }
  ~EnableGradGuard() { set_grad_enabled(previous_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

/// Anomaly mode: backward checks every gradient it computes and throws, naming the op whose
/// backward first produced NaN or Inf. Off by default (it costs a pass over each gradient).
bool is_anomaly_enabled();
/// Turns anomaly mode on or off (prefer AnomalyGuard, which restores it).
void set_anomaly_enabled(bool enabled);

/// Turns anomaly mode on for its scope.
class AnomalyGuard {
 public:
  AnomalyGuard() : previous_(is_anomaly_enabled()) { set_anomaly_enabled(true); }
  ~AnomalyGuard() { set_anomaly_enabled(previous_); }
  AnomalyGuard(const AnomalyGuard&) = delete;
  AnomalyGuard& operator=(const AnomalyGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace latent
