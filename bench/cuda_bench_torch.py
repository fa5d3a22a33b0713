# PyTorch side of bench/cuda_bench.cpp: the conv and dense autoencoders of
# ../shared/peers/torch_bench.py, one training step (forward, MSE, backward, Adam lr 1e-3) at
# batch 128 in float32 on the GPU, synthetic images resident on the GPU, TF32 off (as latent).
# Prints "torch <model> <n> parameters: <ms> ms/step" lines that cuda_bench parses.
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
for name, cls in (("conv", Conv), ("dense", Dense)):
    model = cls().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
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
    print(f"torch {name} {n} parameters: {ms:.4f} ms/step (final loss {loss.item():.5f})", flush=True)
print(f"torch {torch.__version__} cuda {torch.version.cuda} cudnn {torch.backends.cudnn.version()} on {torch.cuda.get_device_name()}")
