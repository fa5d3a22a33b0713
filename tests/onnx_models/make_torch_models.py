#!/usr/bin/python3
"""Exports small PyTorch autoencoders to ONNX for tests/test_onnx_import.cpp.

Run once with Debian's python3-torch (1.13) and commit the output:

    /usr/bin/python3 tests/onnx_models/make_torch_models.py

Each model goes to tests/onnx_models/<name>/model.onnx with test_data_set_0/input_K.pb and
output_K.pb (ONNX's backend-test layout), written as TensorProtos by hand so the script needs
no `onnx` Python package. Seeds are fixed; the batch axis is dynamic.
"""
import os
import struct

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- a TensorProto writer (dims = 1, data_type = 2, name = 8, raw_data = 9) ----

def _varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tensor_proto(t, name):
    t = t.detach().contiguous()
    if t.dtype == torch.float32:
        data_type, fmt = 1, "<%df"
    elif t.dtype == torch.float64:
        data_type, fmt = 11, "<%dd"
    elif t.dtype == torch.int64:
        data_type, fmt = 7, "<%dq"
    else:
        raise ValueError(t.dtype)
    out = bytearray()
    for d in t.shape:
        out += _varint(1 << 3 | 0) + _varint(d)
    out += _varint(2 << 3 | 0) + _varint(data_type)
    nb = name.encode()
    out += _varint(8 << 3 | 2) + _varint(len(nb)) + nb
    values = t.flatten().tolist()
    raw = struct.pack(fmt % len(values), *values)
    out += _varint(9 << 3 | 2) + _varint(len(raw)) + raw
    return bytes(out)


# ---- models ----

class DenseAE(nn.Module):
    """784-128-64-128-784, ReLU, Sigmoid output."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 784), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


class ConvAE(nn.Module):
    """Conv + BatchNorm2d + MaxPool2d down to 16x7x7, a dense bottleneck (the view() exports the
    Shape -> Gather -> Unsqueeze -> Concat -> Reshape subgraph), Upsample(nearest) + ConvTranspose2d up."""

    def __init__(self):
        super().__init__()
        # BatchNorm after the ReLU so that export does not fold it into the convolution.
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2d(2))
        self.fc_in = nn.Linear(16 * 7 * 7, 16)
        self.fc_out = nn.Linear(16, 16 * 7 * 7)
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1), nn.Sigmoid())

    def forward(self, x):
        h = self.encoder(x)
        z = self.fc_in(h.flatten(1))
        h = torch.relu(self.fc_out(z)).view(x.size(0), 16, 7, 7)
        return self.decoder(h)


class VAEEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(784, 64), nn.ELU())
        self.mu = nn.Linear(64, 8)
        self.logvar = nn.Linear(64, 8)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), torch.nn.functional.softplus(self.logvar(h)) - 1.0


class VAEDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 784), nn.Sigmoid())

    def forward(self, z):
        return self.body(z)


def export(name, model, example, input_names, output_names, opset):
    folder = os.path.join(HERE, name)
    data = os.path.join(folder, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    model.eval()
    dynamic = {n: {0: "batch"} for n in input_names + output_names}
    torch.onnx.export(model, example, os.path.join(folder, "model.onnx"), input_names=input_names,
                      output_names=output_names, dynamic_axes=dynamic, opset_version=opset,
                      do_constant_folding=True)
    with torch.no_grad():
        outputs = model(example)
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    for k, (n, t) in enumerate(zip(input_names, (example,))):
        with open(os.path.join(data, "input_%d.pb" % k), "wb") as f:
            f.write(tensor_proto(t, n))
    for k, (n, t) in enumerate(zip(output_names, outputs)):
        with open(os.path.join(data, "output_%d.pb" % k), "wb") as f:
            f.write(tensor_proto(t, n))
    print("wrote", name, "opset", opset)


def main():
    torch.manual_seed(0)
    dense = DenseAE()
    conv = ConvAE()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        conv.train()
        for _ in range(5):
            conv(torch.rand(8, 1, 28, 28))
    enc, dec = VAEEncoder(), VAEDecoder()

    x_dense = torch.rand(3, 784)
    x_conv = torch.rand(2, 1, 28, 28)
    z = torch.randn(3, 8)

    export("dense_ae_op13", dense, x_dense, ["input"], ["output"], 13)
    for opset in (9, 13, 17):
        export("conv_ae_op%d" % opset, conv, x_conv, ["input"], ["output"], opset)
    for opset in (11, 17):
        export("vae_encoder_op%d" % opset, enc, x_dense, ["input"], ["mu", "logvar"], opset)
        export("vae_decoder_op%d" % opset, dec, z, ["z"], ["output"], opset)


if __name__ == "__main__":
    main()
