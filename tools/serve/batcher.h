// Micro-batching for one served model: HTTP threads submit the rows of a request and wait; one
// worker thread gathers queued requests up to `max_batch` rows, waiting at most `max_wait_us`
// after the first one arrived (and not at all when no other request is on its way), runs one
// forward pass (ServedModel::run) and hands each request its own rows back. HTTP threads never
// run kernels: preprocessing runs on the worker too.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "metrics.h"
#include "served_model.h"

namespace latent::serve {

/// Limits of a Batcher.
struct BatchOptions {
  int64_t max_batch = 64;     ///< rows per forward pass (a larger request runs alone)
  int64_t max_wait_us = 500;  ///< longest wait for more rows after the first request
  int64_t max_queue = 1024;   ///< rows waiting beyond which submit refuses (503)
};

/// Thrown by Batcher::submit when the queue is full.
struct Overloaded {
  int64_t queued_rows;
};

/// The queue and worker of one model.
class Batcher {
 public:
  Batcher(std::shared_ptr<const ServedModel> model, BatchOptions options, Metrics& metrics);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  /// Announces a request that will submit soon (the worker waits for it while gathering);
  /// every announce is followed by exactly one submit or withdraw.
  void announce();
  /// Takes back an announce whose request failed before submitting.
  void withdraw();
  /// Queues `rows` rows (row-major values); the future gives one OutputRows per output, or the
  /// model's error. Throws Overloaded past max_queue waiting rows.
  std::future<std::vector<OutputRows>> submit(std::vector<float> values, int64_t rows, bool preprocessed);
  /// Runs what is queued, then stops the worker (idempotent).
  void stop();

 private:
  struct Job {
    std::vector<float> values;
    int64_t rows;
    bool preprocessed;
    std::chrono::steady_clock::time_point queued;
    std::promise<std::vector<OutputRows>> done;
  };
  void loop();
  void run(std::vector<std::unique_ptr<Job>>& batch);

  std::shared_ptr<const ServedModel> model_;
  BatchOptions options_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;
  int64_t queued_rows_ = 0;
  int64_t announced_ = 0;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace latent::serve
