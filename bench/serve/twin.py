"""The PyTorch twin of latent's deep autoencoder for bench/serve's Python peers (flask_twin.py,
kserve_twin.py): the same layers, weights read from the run's model.safetensors, eval mode, one
thread per process (the peers run two worker processes on two cores)."""
import json
import os
import struct

import numpy as np
import torch

torch.set_num_threads(1)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info
        start, end = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(blob[start:end], dtype=np.float32).reshape(info["shape"]).copy())
    return out


class DeepAE(torch.nn.Module):
    """latent's DenseAE for --model deep: Linear-ReLU encoder, Linear-ReLU-...-Sigmoid decoder."""

    def __init__(self, d, hidden, code):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, code), torch.nn.ReLU())
        self.decoder = torch.nn.Sequential(torch.nn.Linear(code, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, d), torch.nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def load_model(run=None):
    """The twin of the run in `run` (default: the LATENT_RUN environment variable), in eval mode."""
    run = run or os.environ["LATENT_RUN"]
    weights = load_safetensors(os.path.join(run, "model.safetensors"))
    hidden, d = weights["encoder.0.weight"].shape
    code = weights["encoder.2.weight"].shape[0]
    model = DeepAE(d, hidden, code)
    model.load_state_dict(weights)
    model.eval()
    return model


def reconstruct(model, data, shape):
    """The run's stored preprocessing (pixels / 255) and the forward pass, as latent serve does."""
    x = torch.as_tensor(data, dtype=torch.float32).reshape(shape) / 255.0
    with torch.no_grad():
        return model(x)
