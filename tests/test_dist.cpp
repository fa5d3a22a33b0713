// The single-process parts of data-parallel training: PyTorch DistributedSampler's sharding,
// the DataLoader's shards against the global batches, the engine's post-accumulate hooks and
// DistributedDataParallel on the local (one-process) group. The multi-process checks run under
// mpirun in tests/dist_test.py.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "helpers.h"
#include "latent.h"
#include "autograd/hooks.h"

using namespace latent;

TEST_CASE("distributed_shard follows PyTorch's DistributedSampler (padding and drop_last)") {
  std::vector<int64_t> order{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  // torch.utils.data.DistributedSampler(range(10), num_replicas=3, rank=r, shuffle=False)
  CHECK(distributed_shard(order, 3, 0, false) == std::vector<int64_t>{0, 3, 6, 9});
  CHECK(distributed_shard(order, 3, 1, false) == std::vector<int64_t>{1, 4, 7, 0});
  CHECK(distributed_shard(order, 3, 2, false) == std::vector<int64_t>{2, 5, 8, 1});
  // drop_last=True: 3 per rank, the tail (9) dropped
  CHECK(distributed_shard(order, 3, 0, true) == std::vector<int64_t>{0, 3, 6});
  CHECK(distributed_shard(order, 3, 2, true) == std::vector<int64_t>{2, 5, 8});
  // fewer samples than ranks: the order repeats ([0, 1, 0, 1, 0] dealt out)
  std::vector<int64_t> two{0, 1};
  for (int r = 0; r < 5; ++r) CHECK(distributed_shard(two, 5, r, false) == std::vector<int64_t>{r % 2});
  CHECK_THROWS_WITH(distributed_shard(order, 3, 3, false), doctest::Contains("rank 3 of 3 replicas"));
}

TEST_CASE("each rank's batch i together is the single-process batch i of the same epoch") {
  std::vector<float> v(100 * 2);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i / 2);  // row k holds k
  auto data = std::make_shared<TensorDataset>(from_vector(v, {100, 2}));
  DataLoader single(data, DataLoaderOptions{.batch_size = 32, .seed = 5});
  for (int64_t ranks : {2, 4}) {
    std::vector<std::unique_ptr<DataLoader>> shards;
    for (int64_t r = 0; r < ranks; ++r)
      shards.push_back(std::make_unique<DataLoader>(
          data, DataLoaderOptions{.batch_size = 32 / ranks, .seed = 5, .num_replicas = ranks, .rank = r}));
    CHECK(shards[0]->num_batches() == single.num_batches());  // 4: the last global batch is 4 samples
    for (int64_t epoch : {0, 3})
      for (int64_t i = 0; i < 3; ++i) {  // the full batches (the last one differs by the padding)
        std::multiset<float> want, got;
        for (float x : single.batch(epoch, i).inputs.to_vector<float>()) want.insert(x);
        for (auto& s : shards)
          for (float x : s->batch(epoch, i).inputs.to_vector<float>()) got.insert(x);
        CHECK(got == want);
      }
  }
  CHECK_THROWS_WITH(DataLoader(data, DataLoaderOptions{.num_replicas = 2, .rank = 2}),
                    doctest::Contains("rank 2 of 2 replicas"));
}

TEST_CASE("a post-accumulate hook runs once per backward, after every gradient of a shared leaf") {
  Tensor w = from_vector(std::vector<float>{2, 3}, {2}).requires_grad_();
  std::vector<float> seen;
  int calls = 0, callbacks = 0;
  set_post_accumulate_grad_hook(w, [&](const Tensor& leaf) {
    ++calls;
    seen = leaf.grad().to_vector<float>();
    queue_backward_callback([&] { ++callbacks; });
  });
  // y = sum(w * w) + sum(3 w): w reaches the leaf through two nodes; d/dw = 2w + 3
  ((w * w).sum() + (w * 3.0).sum()).backward();
  CHECK(calls == 1);
  CHECK(callbacks == 1);
  CHECK(seen == std::vector<float>{7, 9});
  w.zero_grad();
  (w * w).sum().backward();
  CHECK(calls == 2);
  CHECK(seen == std::vector<float>{4, 6});
  set_post_accumulate_grad_hook(w, nullptr);
  (w * w).sum().backward();
  CHECK(calls == 2);
  CHECK_THROWS_WITH(queue_backward_callback([] {}), doctest::Contains("outside a backward pass"));
}

TEST_CASE("DistributedDataParallel on the one-process group leaves gradients as they are") {
  auto group = dist::init_process_group("local");
  CHECK(group->rank() == 0);
  CHECK(group->size() == 1);
  manual_seed(3);
  auto net = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(6, 30), std::make_shared<nn::Tanh>(),
                                              std::make_shared<nn::Linear>(30, 6));
  manual_seed(3);
  auto ref = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(6, 30), std::make_shared<nn::Tanh>(),
                                              std::make_shared<nn::Linear>(30, 6));
  dist::DistributedDataParallel ddp(net, group, dist::DDPOptions{0.001, true});
  // 1 KB buckets, last parameter first: {bias 6, weight 30x6, bias 30} = 864 bytes, then {weight 6x30}
  CHECK(ddp.buckets() == std::vector<std::vector<size_t>>{{3, 2, 1}, {0}});
  Tensor x = rand({5, 6});
  mse_loss(net->forward(x), x).backward();
  mse_loss(ref->forward(x), x).backward();
  auto a = net->parameters(), b = ref->parameters();
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].grad().to_vector<float>() == b[i].grad().to_vector<float>());
  CHECK(ddp.stats().steps == 1);
  CHECK(ddp.stats().bytes_per_step == (6 * 30 + 30 + 30 * 6 + 6) * 4);
  CHECK_THROWS_WITH(dist::DistributedDataParallel(net, group, dist::DDPOptions{0, true}), doctest::Contains("bucket_mb"));
}

TEST_CASE("init_process_group names unknown and missing backends") {
  CHECK_THROWS_WITH(dist::init_process_group("gloo"), doctest::Contains("unknown backend 'gloo'"));
  if (!dist::backend_available("nccl"))
    CHECK_THROWS_WITH(dist::init_process_group("nccl"), doctest::Contains("built without NCCL"));
}
