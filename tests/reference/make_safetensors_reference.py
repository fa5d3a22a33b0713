#!/usr/bin/env python3
"""Writes reference.safetensors with the reference implementation (pip install safetensors numpy).

The file is committed, so the tests do not need Python. Regenerate with:
    python3 tests/reference/make_safetensors_reference.py
tests/test_checkpoint.cpp checks every value written here.
"""
import os

import numpy as np
from safetensors.numpy import save_file

here = os.path.dirname(os.path.abspath(__file__))
tensors = {
    # A PyTorch-style state dict of a tiny Linear(3, 2) plus odd cases.
    "encoder.0.weight": (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) / 4,  # [[-0.625, ...]]
    "encoder.0.bias": np.array([0.5, -1.25], dtype=np.float32),
    "decoder.scale": np.array([1e-300, -2.0, np.pi], dtype=np.float64),
    "steps": np.array([[1, -2], [2**40, -(2**62)]], dtype=np.int64),
    "scalar": np.array(3.5, dtype=np.float32),   # shape []
    "empty": np.zeros((0, 4), dtype=np.float32),  # no bytes
}
save_file(tensors, os.path.join(here, "reference.safetensors"),
          metadata={"format": "pt", "written_by": "safetensors reference implementation"})
