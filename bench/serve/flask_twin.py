"""The usual Python deployment of the same model, for bench/serve/run.sh: a Flask app wrapping
the PyTorch twin of latent's deep autoencoder (weights read from the run's model.safetensors),
answering the same v2 infer request with the same JSON reply. Run under gunicorn:

    LATENT_RUN=runs/deep gunicorn -w 2 -b 127.0.0.1:8001 --chdir bench/serve flask_twin:app
"""
import json
import os
import struct

import numpy as np
import torch
from flask import Flask, jsonify, request

torch.set_num_threads(1)  # two sync workers on two cores


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


run = os.environ["LATENT_RUN"]
weights = load_safetensors(os.path.join(run, "model.safetensors"))
hidden, d = weights["encoder.0.weight"].shape
code = weights["encoder.2.weight"].shape[0]
model = DeepAE(d, hidden, code)
model.load_state_dict(weights)
model.eval()
app = Flask(__name__)


@app.post("/v2/models/deep/infer")
def infer():
    body = request.get_json()
    tensor = body["inputs"][0]
    x = torch.tensor(tensor["data"], dtype=torch.float32).reshape(tensor["shape"]) / 255.0
    with torch.no_grad():
        y = model(x)
    return jsonify({"model_name": "deep", "model_version": "1",
                    "outputs": [{"name": "reconstruction", "datatype": "FP32", "shape": list(y.shape), "data": y.flatten().tolist()}]})
