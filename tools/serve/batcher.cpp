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
  gather_.notify_one();
}

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
  }
  gather_.notify_one();
  if (worker_.joinable()) worker_.join();
}

std::vector<OutputRows> Batcher::infer(std::vector<float> values, int64_t rows, bool preprocessed) {
  auto shared = std::make_shared<Job>();
  Job& job = *shared;
  job.values = std::move(values);
  job.rows = rows;
  job.preprocessed = preprocessed;
  std::unique_lock<std::mutex> lock(mutex_);
  --announced_;
  // A request larger than the whole queue is still taken when nothing waits, so it cannot starve.
  if ((queued_rows_ > 0 && queued_rows_ + rows > options_.max_queue) || stopping_) {
    const int64_t queued = queued_rows_;
    lock.unlock();
    gather_.notify_one();  // the worker may be waiting for this announce
    throw Overloaded{queued};
  }
  job.queued = Clock::now();
  std::vector<Job*> self{&job};
  // Idle model, nobody else coming and no request queued lately (a load that comes and goes
  // keeps batching): batching cannot help, so skip the hand-off.
  const auto quiet = std::chrono::microseconds(std::max<int64_t>(1000, 2 * options_.max_wait_us));
  if (queue_.empty() && !busy_ && inline_runs_ == 0 && announced_ == 0 && job.queued - last_queued_ > quiet) {
    ++inline_runs_;
    lock.unlock();
    run(self, true);
    lock.lock();
    --inline_runs_;
    const bool wake = !queue_.empty();
    lock.unlock();
    if (wake) gather_.notify_one();
  } else {
    last_queued_ = job.queued;
    queued_rows_ += rows;
    queue_.push_back(shared);
    std::future<void> done = job.done.get_future();
    lock.unlock();
    gather_.notify_one();
    done.wait();  // no lock held: woken threads do not contend for the queue's mutex
  }
  if (job.error) std::rethrow_exception(job.error);
  return std::move(job.result);
}

void Batcher::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    // An inline run holds the model; its rows are not ours to wait for, but its lock is.
    gather_.wait(lock, [&] { return stopping_ || (!queue_.empty() && inline_runs_ == 0); });
    if (queue_.empty()) return;  // stopping, nothing left
    if (inline_runs_ > 0) {      // stopping while an inline run finishes: wait for it
      gather_.wait(lock, [&] { return inline_runs_ == 0; });
    }
    busy_ = true;
    // Gather: more rows may come while other requests are announced (parsing their bodies).
    const auto deadline = queue_.front()->queued + std::chrono::microseconds(options_.max_wait_us);
    while (!stopping_ && announced_ > 0 && queued_rows_ < options_.max_batch &&
           gather_.wait_until(lock, deadline) != std::cv_status::timeout) {
    }
    std::vector<std::shared_ptr<Job>> taken_jobs;
    std::vector<Job*> batch;
    int64_t taken = 0;
    while (!queue_.empty() && (batch.empty() || taken + queue_.front()->rows <= options_.max_batch)) {
      taken += queue_.front()->rows;
      batch.push_back(queue_.front().get());
      taken_jobs.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_rows_ -= taken;
    lock.unlock();
    run(batch, false);
    for (Job* j : batch) j->done.set_value();
    lock.lock();
    busy_ = false;
  }
}

void Batcher::run(std::vector<Job*>& batch, bool on_request_thread) {
  const auto start = Clock::now();
  const std::string& name = model_->signature().name;
  const int64_t d = model_->signature().input.width;
  int64_t rows = 0;
  bool all_raw = true;
  for (const Job* job : batch) {
    rows += job->rows;
    all_raw = all_raw && !job->preprocessed;
    metrics_.observe_queue(name, std::chrono::duration<double>(start - job->queued).count());
  }
  try {
    Tensor x;
    if (batch.size() == 1) {
      x = from_vector(batch[0]->values, {rows, d});
    } else {
      std::vector<float> values(static_cast<size_t>(rows * d));
      size_t at = 0;
      for (const Job* job : batch) {
        std::vector<float> own;
        const std::vector<float>* src = &job->values;
        if (!job->preprocessed && !all_raw) {  // mixed batch: prepare this request's rows alone
          own = model_->prepare(from_vector(job->values, {job->rows, d})).contiguous().to_vector<float>();
          src = &own;
        }
        std::memcpy(values.data() + at, src->data(), src->size() * sizeof(float));
        at += src->size();
      }
      x = from_vector(values, {rows, d});
    }
    if (all_raw) x = model_->prepare(x).contiguous();
    std::vector<OutputRows> outputs = model_->run(x);
    metrics_.observe_batch(name, rows, std::chrono::duration<double>(Clock::now() - start).count(), on_request_thread);
    if (batch.size() == 1) {
      batch[0]->result = std::move(outputs);
      return;
    }
    int64_t first = 0;
    for (Job* job : batch) {
      job->result.resize(outputs.size());
      for (size_t k = 0; k < outputs.size(); ++k) {
        const int64_t w = static_cast<int64_t>(outputs[k].values.size()) / rows;
        job->result[k].values.assign(outputs[k].values.begin() + first * w, outputs[k].values.begin() + (first + job->rows) * w);
      }
      first += job->rows;
    }
  } catch (...) {
    for (Job* job : batch) job->error = std::current_exception();
  }
}

}  // namespace latent::serve
