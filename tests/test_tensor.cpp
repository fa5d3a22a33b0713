// Tensor basics: creation, metadata, views without copies, element access, dtypes, printing,
// random numbers, in-place ops and the version counter.
#include <sstream>

#include "helpers.h"

using namespace latent;
using latent::testing::check_values;

TEST_CASE("creation from values and factories") {
  Tensor a = tensor({1, 2, 3});
  CHECK(a.dtype() == kFloat32);
  CHECK(a.shape() == Shape{3});
  check_values(a, {1, 2, 3});

  Tensor m = tensor({{1, 2, 3}, {4, 5, 6}});
  CHECK(m.shape() == Shape{2, 3});
  CHECK(m.at<float>({1, 2}) == 6.0f);
  CHECK(m.at<double>({-1, 0}) == 4.0);

  Tensor d = from_vector(std::vector<double>{1.5, 2.5}, {2});
  CHECK(d.dtype() == kFloat64);
  Tensor l = from_vector(std::vector<int64_t>{7, 8, 9, 10}, {2, 2});
  CHECK(l.dtype() == kInt64);
  CHECK(l.at<int64_t>({1, 1}) == 10);

  check_values(zeros({2, 2}), {0, 0, 0, 0});
  check_values(ones({3}, kFloat64), {1, 1, 1});
  check_values(full({2}, 2.5), {2.5, 2.5});
  check_values(arange(5), {0, 1, 2, 3, 4});
  CHECK(arange(5).dtype() == kInt64);
  check_values(arange(1.0, 2.0, 0.25, kFloat64), {1.0, 1.25, 1.5, 1.75});
  CHECK(arange(0.0, 0.0, 1.0).numel() == 0);
  CHECK(scalar_tensor(3.0).item<float>() == 3.0f);
  CHECK(scalar_tensor(3.0).dim() == 0);
}

TEST_CASE("creation errors name the op and the values") {
  CHECK_THROWS_WITH_SUBSTR(from_vector(std::vector<float>{1, 2, 3, 4, 5}, {2, 3}),
                           "[tensor] 5 values do not fill shape [2, 3] (6 elements)");
  CHECK_THROWS_WITH_SUBSTR(empty({2, -1}), "[empty] negative size in shape [2, -1]");
  CHECK_THROWS_WITH_SUBSTR(arange(0.0, 1.0, 0.0), "[arange] step must be nonzero");
  CHECK_THROWS_WITH_SUBSTR(rand({2}, kInt64), "[rand] dtype int64 is not supported");
  CHECK_THROWS_WITH_SUBSTR(tensor({1, 2}).item<float>(), "[item] a tensor with 2 elements cannot be converted");
  CHECK_THROWS_WITH_SUBSTR(tensor({1, 2}).at<float>({2}), "[at] index 2 is out of range for dim 0 of size 2");
  CHECK_THROWS_WITH_SUBSTR(tensor({1, 2}).data_ptr<double>(), "[data_ptr] tensor has dtype float32, requested float64");
  CHECK_THROWS_WITH_SUBSTR(zeros({1, 1, 1, 1, 1, 1, 1, 1, 1}), "[shape] at most 8 dimensions are supported; got 9");
}

TEST_CASE("views share storage and have the right strides") {
  Tensor x = arange(0.0, 24.0, 1.0, kFloat32).view({2, 3, 4});
  CHECK(x.strides() == Shape{12, 4, 1});
  CHECK(x.is_contiguous());

  Tensor tr = x.transpose(0, 2);
  CHECK(tr.shape() == Shape{4, 3, 2});
  CHECK(tr.strides() == Shape{1, 4, 12});
  CHECK(tr.storage() == x.storage());
  CHECK_FALSE(tr.is_contiguous());
  CHECK(tr.at<float>({3, 2, 1}) == x.at<float>({1, 2, 3}));

  Tensor p = x.permute({1, 2, 0});
  CHECK(p.shape() == Shape{3, 4, 2});
  CHECK(p.at<float>({2, 3, 1}) == 23.0f);

  Tensor n = x.narrow(2, 1, 2);
  CHECK(n.shape() == Shape{2, 3, 2});
  CHECK(n.storage_offset() == 1);
  check_values(n[0][0], {1, 2});

  Tensor s = x.slice(2, 0, 4, 2);
  check_values(s[1][2], {20, 22});
  check_values(x.slice(1, -2, 100)[0], {4, 5, 6, 7, 8, 9, 10, 11});

  Tensor sel = x.select(1, -1);
  CHECK(sel.shape() == Shape{2, 4});
  check_values(sel, {8, 9, 10, 11, 20, 21, 22, 23});

  Tensor e = tensor({1, 2, 3}).view({3, 1}).expand({3, 4});
  CHECK(e.strides() == Shape{1, 0});
  check_values(e[2], {3, 3, 3, 3});
  check_values(tensor({5}).expand({2, 3}), {5, 5, 5, 5, 5, 5});
  CHECK(tensor({5, 6}).expand({2, -1}).shape() == Shape{2, 2});

  CHECK(x.unsqueeze(0).shape() == Shape{1, 2, 3, 4});
  CHECK(x.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
  CHECK(zeros({1, 3, 1}).squeeze().shape() == Shape{3});
  CHECK(zeros({1, 3, 1}).squeeze(2).shape() == Shape{1, 3});
  CHECK(zeros({1, 3, 1}).squeeze(1).shape() == Shape{1, 3, 1});
  CHECK(x.flatten().shape() == Shape{24});
  CHECK(x.flatten(1).shape() == Shape{2, 12});
  CHECK(x.view({-1, 6}).shape() == Shape{4, 6});
}

TEST_CASE("view of non-contiguous layouts and reshape copies only when needed") {
  Tensor x = arange(0.0, 24.0, 1.0, kFloat64).view({2, 3, 4});
  // Merging dims that stay contiguous with each other is a view.
  Tensor p = x.permute({1, 0, 2});  // (3, 2, 4), strides (4, 12, 1)
  Tensor v = p.view({3, 2, 2, 2});
  CHECK(v.storage() == x.storage());
  check_values(v[1][0][1], {6, 7});
  CHECK_THROWS_WITH_SUBSTR(p.view({6, 4}), "[view] shape [6, 4] is not compatible with the layout");
  Tensor r = p.reshape({6, 4});
  CHECK(r.storage() != x.storage());
  check_values(r[1], {12, 13, 14, 15});
  Tensor same = x.reshape({6, 4});
  CHECK(same.storage() == x.storage());
}

TEST_CASE("view errors") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH_SUBSTR(x.view({4, 2}), "[view] shape [4, 2] is invalid for input of size 6");
  CHECK_THROWS_WITH_SUBSTR(x.view({-1, -1}), "only one dim can be -1");
  CHECK_THROWS_WITH_SUBSTR(x.transpose(0, 2), "[transpose] dim 2 is out of range for a 2-d tensor");
  CHECK_THROWS_WITH_SUBSTR(x.permute({0, 0}), "[permute] dim 0 appears twice");
  CHECK_THROWS_WITH_SUBSTR(x.narrow(1, 2, 2), "[narrow] start 2 and length 2 are out of range for dim 1 of size 3");
  CHECK_THROWS_WITH_SUBSTR(x.select(0, 2), "[select] index 2 is out of range for dim 0 of size 2");
  CHECK_THROWS_WITH_SUBSTR(x.expand({4, 3}), "[expand] cannot expand shape [2, 3] to [4, 3]");
  CHECK_THROWS_WITH_SUBSTR(x.slice(0, 0, 2, 0), "[slice] step must be positive");
  CHECK_THROWS_WITH_SUBSTR(tensor({5}).expand({-1, 3}), "[expand] size -1 is not allowed in a new leading dim of [-1, 3]");
  CHECK_THROWS_WITH_SUBSTR(zeros({2, 3, 4}).t(), "[t] expects a tensor with at most 2 dims");
}

TEST_CASE("contiguous, clone and dtype conversion copy correctly") {
  Tensor x = arange(0.0, 6.0, 1.0, kFloat32).view({2, 3});
  Tensor tr = x.t();
  Tensor c = tr.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.storage() != x.storage());
  check_values(c, {0, 3, 1, 4, 2, 5});
  CHECK(x.contiguous().is_same(x));

  Tensor cl = x.clone();
  cl.add_(1.0);
  check_values(x, {0, 1, 2, 3, 4, 5});
  check_values(cl, {1, 2, 3, 4, 5, 6});

  Tensor d = tensor({1.5f, -2.5f}).to(kFloat64);
  CHECK(d.dtype() == kFloat64);
  check_values(d, {1.5, -2.5});
  Tensor i = tensor({1.7f, -2.7f}).to(kInt64);
  CHECK(i.dtype() == kInt64);
  CHECK(i.at<int64_t>({0}) == 1);
  CHECK(i.at<int64_t>({1}) == -2);
}

TEST_CASE("in-place ops write through views and bump the version") {
  Tensor x = zeros({2, 3});
  const uint32_t v0 = x.version();
  x.fill_(2.0);
  CHECK(x.version() == v0 + 1);
  x.add_(tensor({1, 2, 3}));
  check_values(x, {3, 4, 5, 3, 4, 5});
  x.mul_(2.0).sub_(1.0);
  check_values(x, {5, 7, 9, 5, 7, 9});
  x.div_(tensor({1, 2}).view({2, 1}));
  check_values(x, {5, 7, 9, 2.5, 3.5, 4.5});
  x.clamp_(3.0, 6.0);
  check_values(x, {5, 6, 6, 3, 3.5, 4.5});
  x.add_(ones({2, 3}), 0.5);
  check_values(x, {5.5, 6.5, 6.5, 3.5, 4, 5});

  Tensor col = x.select(1, 0);  // a strided view
  col.zero_();
  check_values(x, {0, 6.5, 6.5, 0, 4, 5});
  CHECK(x.version() == col.version());
  x.t().copy_(tensor({{1, 2}, {3, 4}, {5, 6}}));
  check_values(x, {1, 3, 5, 2, 4, 6});

  CHECK_THROWS_WITH_SUBSTR(x.add_(ones({3, 3})), "[add_] shapes [2, 3] and [3, 3] cannot broadcast");
  CHECK_THROWS_WITH_SUBSTR(zeros({3}).add_(ones({2, 3})), "[add_] cannot write a result of shape [2, 3] into a tensor of shape [3]");
  CHECK_THROWS_WITH_SUBSTR(x.clamp_(2.0, 1.0), "[clamp_] min 2 is greater than max 1");
  Tensor leaf = ones({2}).requires_grad_();
  CHECK_THROWS_WITH_SUBSTR(leaf.add_(1.0), "[add_] in-place op on a tensor that requires grad");
  {
    NoGradGuard guard;
    leaf.add_(1.0);
  }
  check_values(leaf, {2, 2});
}

TEST_CASE("int64 tensors for labels") {
  Tensor labels = from_vector(std::vector<int64_t>{3, 1, 4}, {3});
  Tensor doubled = labels * 2.0;
  CHECK(doubled.dtype() == kInt64);
  check_values(doubled, {6, 2, 8});
  Tensor halves = labels * 0.5;  // a fractional scalar promotes to float32
  CHECK(halves.dtype() == kFloat32);
  check_values(halves, {1.5, 0.5, 2});
  Tensor q = labels / from_vector(std::vector<int64_t>{2, 2, 2}, {3});
  CHECK(q.dtype() == kFloat32);
  check_values(q, {1.5, 0.5, 2});
  CHECK_THROWS_WITH_SUBSTR(labels.requires_grad_(), "[requires_grad_] only float32 and float64 tensors can require grad");
  CHECK_THROWS_WITH_SUBSTR(exp(labels), "[exp] dtype int64 is not supported: expected float32 or float64");
  CHECK(sum(labels).item<int64_t>() == 8);
}

TEST_CASE("random numbers are seeded and reproducible") {
  manual_seed(42);
  Tensor a = rand({1000});
  Tensor b = randn({1000}, kFloat64);
  manual_seed(42);
  Tensor a2 = rand({1000});
  Tensor b2 = randn({1000}, kFloat64);
  CHECK(a.to_vector<float>() == a2.to_vector<float>());
  CHECK(b.to_vector<double>() == b2.to_vector<double>());
  // Moments of 1000 samples: uniform mean 0.5 (sd 0.009), normal mean 0 (sd 0.03), var 1.
  CHECK(std::abs(mean(a).item<double>() - 0.5) < 0.05);
  CHECK(std::abs(mean(b).item<double>()) < 0.12);
  CHECK(std::abs(mean(b * b).item<double>() - 1.0) < 0.15);
  CHECK(min(a).item<double>() >= 0.0);
  CHECK(max(a).item<double>() < 1.0);

  // The generator is xoshiro256** seeded by splitmix64: these bits are the same on every platform.
  Generator g(0);
  CHECK(g.next_u64() == 0x99ec5f36cb75f2b4ULL);
  Tensor perm = randperm(10);
  std::vector<int64_t> sorted = perm.to_vector<int64_t>();
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 10; ++i) CHECK(sorted[static_cast<size_t>(i)] == i);
  Tensor ri = randint(3, 7, {200});
  CHECK(min(ri).item<int64_t>() >= 3);
  CHECK(max(ri).item<int64_t>() <= 6);

  Generator s1(7), s2(7);
  auto st = s1.state();
  double first = s1.normal();
  s2.set_state(st);
  CHECK(s2.normal() == first);
}

TEST_CASE("printing shows shape, dtype, device, requires_grad and grad_fn") {
  Tensor x = tensor({1, 2}).requires_grad_();
  CHECK(x.describe() == "Tensor[shape=[2], dtype=float32, device=cpu, requires_grad=true]");
  Tensor y = x * 2.0;
  CHECK(y.describe() == "Tensor[shape=[2], dtype=float32, device=cpu, requires_grad=true, grad_fn=mul]");
  std::string s = arange(0.0, 10.0, 1.0, kFloat64).to_string();
  CHECK(s.find("[0, 1, 2, ..., 7, 8, 9]") != std::string::npos);
  std::ostringstream os;
  os << tensor({{1, 2}, {3, 4}});
  CHECK(os.str().find("[[1, 2], [3, 4]]") != std::string::npos);
}

TEST_CASE("devices other than cpu fail cleanly without the CUDA backend") {
  if (device_available(kCUDA)) {
    MESSAGE("a CUDA GPU is present: nothing to check here (tests/test_cuda.cpp covers it)");
    return;
  }
  CHECK_THROWS_WITH_SUBSTR(zeros({2}, kFloat32, kCUDA), "device cuda is not available: ");
  CHECK_THROWS_WITH_SUBSTR(zeros({2}).to(kCUDA), "[to] device cuda is not available: ");
}

TEST_CASE("caching allocator reuses freed blocks") {
  AllocatorStats before = cpu_allocator_stats();
  if (!before.caching) {
    MESSAGE("caching allocator bypassed in this build (sanitizer build); nothing to check");
    return;
  }
  { Tensor warm = empty({1000}); }
  AllocatorStats mid = cpu_allocator_stats();
  for (int i = 0; i < 10; ++i) Tensor t = empty({1000});
  AllocatorStats after = cpu_allocator_stats();
  CHECK(after.system_allocations == mid.system_allocations);
  CHECK(after.cache_hits >= mid.cache_hits + 10);
}
