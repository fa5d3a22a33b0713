// Micro-batching for one served model: HTTP threads queue the rows of a request and wait; a worker
// thread gathers queued requests up to `max_batch` rows, waiting at most `max_wait_us` after the
// first one arrived (and not at all when no other request is on its way), runs one forward pass
// (ServedModel::run) and hands each request its own rows back. The inline fast path: a request
// that finds the model idle (nothing queued, no batch running, no other request announced, and
// none queued in the last max(1 ms, 2 x max_wait_us)) runs on its own HTTP thread, with no
// hand-off to the worker and back, since batching could not help it; under load every request
// goes through the queue, so --max-batch still holds.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
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

/// Thrown by Batcher::infer when the queue is full or the batcher has stopped.
struct Overloaded {
  int64_t queued_rows;
};

/// The queue and worker of one model (see the file comment).
class Batcher {
 public:
  Batcher(std::shared_ptr<const ServedModel> model, BatchOptions options, Metrics& metrics);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  /// Announces a request that will call infer soon (a leader waits for it while gathering);
  /// every announce is followed by exactly one infer or withdraw.
  void announce();
  /// Takes back an announce whose request failed before infer.
  void withdraw();
  /// Runs `rows` rows (row-major values) inline when the model is idle, else queues them and
  /// waits for the worker's batch that holds them; returns one OutputRows per output and rethrows
  /// the model's error. Throws Overloaded past max_queue waiting rows or after stop().
  std::vector<OutputRows> infer(std::vector<float> values, int64_t rows, bool preprocessed);
  /// Runs what is queued, then stops the worker; later requests are refused (idempotent).
  void stop();

 private:
  struct Job {
    std::vector<float> values;
    int64_t rows = 0;
    bool preprocessed = false;
    std::chrono::steady_clock::time_point queued;
    std::vector<OutputRows> result;
    std::exception_ptr error;
    std::promise<void> done;  ///< set by the worker, outside the lock, once result or error is in
  };
  void loop();
  void run(std::vector<Job*>& batch, bool on_request_thread);

  std::shared_ptr<const ServedModel> model_;
  BatchOptions options_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable gather_;  ///< the worker: rows queued, an announce ended, or stopping
  std::deque<std::shared_ptr<Job>> queue_;  ///< shared: the worker may still be setting `done`
  int64_t queued_rows_ = 0;
  int64_t announced_ = 0;
  bool busy_ = false;  ///< the worker is gathering or running a batch
  int64_t inline_runs_ = 0;  ///< requests running on their own threads now
  std::chrono::steady_clock::time_point last_queued_;  ///< when a request last went to the worker
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace latent::serve
