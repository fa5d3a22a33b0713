# PyTorch side of bench/cuda_bench.cpp: the conv and dense autoencoders of
# ../shared/peers/torch_bench.py, one training step (forward, MSE, backward, Adam lr 1e-3) at
# batch 128 in float32 on the GPU, synthetic images resident on the GPU, TF32 off (as latent).
# Adam is timed twice per model, as its own series each: PyTorch's default (foreach) and
# fused=True (one kernel launch for the whole update, as latent's step is one fused kernel).
# Prints "torch <model>-adam-<kind> <n> parameters: <ms> ms/step" for each, then the
# "torch <model> <n> parameters: <ms> ms/step" line that cuda_bench parses for its ratio: the faster
# of the two, so the ratio is against PyTorch's best optimizer setting.
# usage: python3 cuda_bench_torch.py [--steps 300] [--warmup 30]
import argparse, time
import torch, torch.nn as nn, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=300)
p.add_argument("--warmup", type=int, default=30)
args = p.parse_args()
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.manual_seed(0)
dev = torch.device("cuda")

class Dense(nn.Module):
    def __init__(s, i=784, e=64):
        super().__init__()
        s.encoder = nn.Sequential(nn.Linear(i, e*2), nn.ReLU(), nn.Linear(e*2, e), nn.ReLU())
        s.decoder = nn.Sequential(nn.Linear(e, e*2), nn.ReLU(), nn.Linear(e*2, i), nn.Sigmoid())
    def forward(s, x): return s.decoder(s.encoder(x))

class Conv(nn.Module):
    def __init__(s):
        super().__init__()
        s.encoder = nn.Sequential(nn.Conv2d(1,16,3,2,1), nn.ReLU(), nn.Conv2d(16,32,3,2,1), nn.ReLU())
        s.decoder = nn.Sequential(nn.ConvTranspose2d(32,16,3,2,1,1), nn.ReLU(), nn.ConvTranspose2d(16,1,3,2,1,1), nn.Sigmoid())
    def forward(s, x): return s.decoder(s.encoder(x.view(-1,1,28,28))).view(-1,784)

data = [torch.rand(128, 784, device=dev) for _ in range(64)]


def make_adam(params, kind):
    """Adam lr 1e-3; kind "fused" asks for fused=True (PyTorch >= 1.13 on CUDA), else None if refused."""
    if kind == "default":
        return torch.optim.Adam(params, lr=1e-3)
    try:
        return torch.optim.Adam(params, lr=1e-3, fused=True)
    except (TypeError, RuntimeError) as e:
        print(f"torch fused Adam unavailable in torch {torch.__version__}: {e}", flush=True)
        return None


for name, cls in (("conv", Conv), ("dense", Dense)):
    best = None
    for kind in ("default", "fused"):
        torch.manual_seed(0)
        model = cls().to(dev)
        opt = make_adam(model.parameters(), kind)
        if opt is None:
            continue
        def step(i):
            x = data[i % len(data)]
            loss = F.mse_loss(model(x), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        for i in range(args.warmup): step(i)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(args.steps): loss = step(i)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1e3 / args.steps
        n = sum(q.numel() for q in model.parameters())
        print(f"torch {name}-adam-{kind} {n} parameters: {ms:.4f} ms/step (final loss {loss.item():.5f})", flush=True)
        if best is None or ms < best[0]:
            best = (ms, n, kind, loss.item())
    ms, n, kind, final = best
    print(f"torch {name} {n} parameters: {ms:.4f} ms/step (final loss {final:.5f}; the faster Adam: {kind})", flush=True)
print(f"torch {torch.__version__} cuda {torch.version.cuda} cudnn {torch.backends.cudnn.version()} on {torch.cuda.get_device_name()}")
