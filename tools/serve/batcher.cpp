#include "batcher.h"

#include <algorithm>
#include <cstring>

namespace latent::serve {

using Clock = std::chrono::steady_clock;

Batcher::Batcher(std::shared_ptr<const ServedModel> model, BatchOptions options, Metrics& metrics)
    : model_(std::move(model)), options_(options), metrics_(metrics), worker_([this] { loop(); }) {}

Batcher::~Batcher() { stop(); }

void Batcher::announce() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++announced_;
}

void Batcher::withdraw() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --announced_;
  }
  wake_.notify_one();
}

std::future<std::vector<OutputRows>> Batcher::submit(std::vector<float> values, int64_t rows, bool preprocessed) {
  auto job = std::make_unique<Job>();
  job->values = std::move(values);
  job->rows = rows;
  job->preprocessed = preprocessed;
  job->queued = Clock::now();
  auto future = job->done.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --announced_;
    // A request larger than the whole queue is still taken when nothing waits, so it cannot starve.
    if (queued_rows_ > 0 && queued_rows_ + rows > options_.max_queue) throw Overloaded{queued_rows_};
    if (stopping_) throw Overloaded{queued_rows_};
    queued_rows_ += rows;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return future;
}

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (worker_.joinable()) worker_.join();
}

void Batcher::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    // Gather: more rows may come while other requests are announced (parsing their bodies).
    const auto deadline = queue_.front()->queued + std::chrono::microseconds(options_.max_wait_us);
    while (!stopping_ && announced_ > 0 && queued_rows_ < options_.max_batch &&
           wake_.wait_until(lock, deadline) != std::cv_status::timeout) {
    }
    std::vector<std::unique_ptr<Job>> batch;
    int64_t rows = 0;
    while (!queue_.empty() && (batch.empty() || rows + queue_.front()->rows <= options_.max_batch)) {
      rows += queue_.front()->rows;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_rows_ -= rows;
    lock.unlock();
    run(batch);
    lock.lock();
  }
}

void Batcher::run(std::vector<std::unique_ptr<Job>>& batch) {
  const auto start = Clock::now();
  const std::string& name = model_->signature().name;
  const int64_t d = model_->signature().input.width;
  int64_t rows = 0;
  bool all_raw = true;
  for (const auto& job : batch) {
    rows += job->rows;
    all_raw = all_raw && !job->preprocessed;
    metrics_.observe_queue(name, std::chrono::duration<double>(start - job->queued).count());
  }
  try {
    std::vector<float> values(static_cast<size_t>(rows * d));
    size_t at = 0;
    for (const auto& job : batch) {
      std::vector<float> own;
      const std::vector<float>* src = &job->values;
      if (!job->preprocessed && !all_raw) {  // mixed batch: prepare this request's rows alone
        own = model_->prepare(from_vector(job->values, {job->rows, d})).contiguous().to_vector<float>();
        src = &own;
      }
      std::memcpy(values.data() + at, src->data(), src->size() * sizeof(float));
      at += src->size();
    }
    Tensor x = from_vector(values, {rows, d});
    if (all_raw) x = model_->prepare(x).contiguous();
    const std::vector<OutputRows> outputs = model_->run(x);
    metrics_.observe_batch(name, rows, std::chrono::duration<double>(Clock::now() - start).count());
    int64_t first = 0;
    for (auto& job : batch) {
      std::vector<OutputRows> mine(outputs.size());
      for (size_t k = 0; k < outputs.size(); ++k) {
        const int64_t w = static_cast<int64_t>(outputs[k].values.size()) / rows;
        mine[k].values.assign(outputs[k].values.begin() + first * w, outputs[k].values.begin() + (first + job->rows) * w);
      }
      first += job->rows;
      job->done.set_value(std::move(mine));
    }
  } catch (...) {
    for (auto& job : batch) {
      try {
        job->done.set_exception(std::current_exception());
      } catch (const std::future_error&) {  // this job had its rows already
      }
    }
  }
}

}  // namespace latent::serve
