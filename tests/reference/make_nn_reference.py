#!/usr/bin/python3
"""Writes nn_reference.txt: PyTorch's results for the ops of ops/nn_ops.h, read by tests/test_nn_ops.cpp.

Run once with Debian's python3-torch (`/usr/bin/python3 tests/reference/make_nn_reference.py`) and
commit the output; the tests do not need Python or torch.

Format (plain text, one item per line):
    case <op> key=value ...          attributes; pairs are written "h,w"
    <name> <shape d0,d1,...> v0 v1 ...  a float64 tensor in row-major order
    end
Each case has the input `x`, the upstream gradient `gout`, the output `out` and the input gradient
`gx` (the gradient of sum(out * gout)); some add more (indices, batch_norm's parameters and stats).
Inputs are rounded to a few decimals (max pooling uses distinct values so there are no ties) and
written exactly; results are written with 12 significant digits.
"""
import os

import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn_reference.txt")
lines = []


def fmt_tensor(name, t, digits=12):
    t = t.detach().to(torch.float64).contiguous()
    shape = ",".join(str(s) for s in t.shape) if t.dim() > 0 else "-"
    vals = " ".join(f"{v:.{digits}g}" for v in t.reshape(-1).tolist())
    lines.append(f"{name} {shape} {vals}")


def rounded(shape, decimals=3):
    return torch.round(torch.randn(*shape) * 10**decimals) / 10**decimals


def distinct(shape):
    """Distinct values (multiples of 1/8) so max pooling has no ties."""
    n = 1
    for s in shape:
        n *= s
    return ((torch.randperm(n).to(torch.float64) - n / 2) / 8).reshape(shape)


def attrs_str(attrs):
    out = []
    for k, v in attrs.items():
        if isinstance(v, (tuple, list)):
            v = ",".join(str(int(e)) for e in v)
        elif isinstance(v, bool):
            v = str(int(v))
        out.append(f"{k}={v}")
    return " ".join(out)


def case(op, attrs, x, fn, extra_out=None):
    """Runs fn(x) -> out (or (out, extra dict)), backpropagates a random gout and records everything."""
    x = x.clone().requires_grad_(True)
    res = fn(x)
    extras = {}
    if isinstance(res, tuple):
        res, extras = res
    gout = rounded(res.shape)
    (res * gout).sum().backward()
    lines.append(f"case {op} {attrs_str(attrs)}".rstrip())
    fmt_tensor("x", x)
    fmt_tensor("gout", gout)
    fmt_tensor("out", res)
    fmt_tensor("gx", x.grad)
    for name, t in extras.items():
        fmt_tensor(name, t)
    lines.append("end")


# ---- max_pool2d ----
def max_pool_case(shape, kernel, stride, padding, dilation, ceil):
    def fn(x):
        out, idx = F.max_pool2d(x, kernel, stride or None, padding, dilation, ceil_mode=ceil, return_indices=True)
        return out, {"indices": idx}
    attrs = dict(kernel=kernel, stride=stride or 0, padding=padding, dilation=dilation, ceil_mode=ceil)
    case("max_pool2d", attrs, distinct(shape), fn)


max_pool_case((1, 2, 4, 6), (2, 2), None, (0, 0), (1, 1), False)
max_pool_case((2, 2, 5, 7), (3, 3), (2, 2), (1, 1), (1, 1), False)
max_pool_case((1, 2, 6, 5), (3, 3), (2, 2), (1, 1), (1, 1), True)
max_pool_case((1, 1, 7, 5), (3, 2), (2, 1), (1, 0), (2, 1), False)
max_pool_case((1, 1, 5, 5), (2, 2), (2, 2), (0, 0), (1, 1), True)
max_pool_case((1, 1, 5, 5), (3, 3), (3, 3), (1, 1), (1, 1), True)  # ceil mode drops a window starting in the padding
max_pool_case((1, 1, 6, 7), (2, 3), (3, 2), (1, 1), (2, 2), True)


# ---- avg_pool2d ----
def avg_pool_case(shape, kernel, stride, padding, ceil, cip):
    attrs = dict(kernel=kernel, stride=stride or 0, padding=padding, ceil_mode=ceil, count_include_pad=cip)
    case("avg_pool2d", attrs, rounded(shape),
         lambda x: F.avg_pool2d(x, kernel, stride or None, padding, ceil_mode=ceil, count_include_pad=cip))


avg_pool_case((1, 2, 4, 6), (2, 2), None, (0, 0), False, True)
avg_pool_case((2, 1, 5, 7), (3, 3), (2, 2), (1, 1), False, True)
avg_pool_case((2, 1, 5, 7), (3, 3), (2, 2), (1, 1), False, False)
avg_pool_case((1, 2, 6, 5), (3, 3), (2, 2), (1, 1), True, True)
avg_pool_case((1, 2, 6, 5), (3, 3), (2, 2), (1, 1), True, False)
avg_pool_case((1, 1, 5, 6), (3, 2), (1, 2), (1, 1), True, True)
avg_pool_case((1, 1, 5, 5), (3, 3), (3, 3), (1, 1), True, True)

# ---- adaptive_avg_pool2d ----
for shape, size in [((1, 2, 5, 7), (3, 4)), ((2, 1, 6, 6), (1, 1)), ((1, 1, 3, 5), (5, 7)), ((1, 1, 4, 4), (4, 4))]:
    case("adaptive_avg_pool2d", dict(size=size), rounded(shape), lambda x: F.adaptive_avg_pool2d(x, size))

# ---- 1-d pooling ----
case("max_pool1d", dict(kernel=3, stride=2, padding=1, dilation=1, ceil_mode=True), distinct((2, 2, 8)),
     lambda x: F.max_pool1d(x, 3, 2, 1, 1, ceil_mode=True))
case("max_pool1d", dict(kernel=2, stride=1, padding=1, dilation=3, ceil_mode=False), distinct((1, 2, 7)),
     lambda x: F.max_pool1d(x, 2, 1, 1, 3))
case("avg_pool1d", dict(kernel=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), rounded((2, 2, 8)),
     lambda x: F.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False))
case("avg_pool1d", dict(kernel=4, stride=3, padding=2, ceil_mode=False, count_include_pad=True), rounded((1, 2, 9)),
     lambda x: F.avg_pool1d(x, 4, 3, 2))
case("adaptive_avg_pool1d", dict(size=4), rounded((1, 2, 7)), lambda x: F.adaptive_avg_pool1d(x, 4))

# ---- upsampling ----
for shape, size in [((1, 2, 3, 4), (5, 7)), ((1, 1, 5, 7), (3, 4)), ((2, 1, 2, 3), (4, 6))]:
    case("upsample_nearest2d", dict(size=size), rounded(shape), lambda x: F.interpolate(x, size=size, mode="nearest"))
for shape, size in [((1, 2, 3, 4), (5, 7)), ((1, 1, 6, 5), (4, 3)), ((2, 1, 2, 3), (4, 6)), ((1, 1, 3, 4), (1, 5))]:
    for ac in (False, True):
        case("upsample_bilinear2d", dict(size=size, align_corners=ac), rounded(shape),
             lambda x: F.interpolate(x, size=size, mode="bilinear", align_corners=ac))
case("interpolate", dict(scale=2.0, mode="nearest", align_corners=False), rounded((1, 2, 3, 2)),
     lambda x: F.interpolate(x, scale_factor=2.0, mode="nearest"))
case("interpolate", dict(scale=1.5, mode="bilinear", align_corners=False), rounded((1, 1, 4, 2)),
     lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=False))
case("interpolate", dict(scale=2.0, mode="bilinear", align_corners=True), rounded((1, 1, 3, 3)),
     lambda x: F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True))

# ---- pad ----
for shape, pads, mode, value in [
    ((1, 2, 5), (1, 2), "constant", 0.5),
    ((1, 2, 3, 4), (1, 2, 2, 0), "constant", 0.0),
    ((2, 3, 4), (-1, 2, 1, -1), "constant", -1.0),
    ((1, 2, 4, 5), (2, 1, 1, 3), "reflect", 0.0),
    ((1, 2, 5), (3, 1), "reflect", 0.0),
    ((1, 2, 3, 4), (2, 3, 1, 0), "replicate", 0.0),
    ((2, 1, 4), (0, 3), "replicate", 0.0),
]:
    case("pad", dict(pads=pads, mode=mode, value=value), rounded(shape), lambda x: F.pad(x, pads, mode, value))


# ---- batch_norm ----
def batch_norm_case(shape, training, momentum, affine, eps=1e-5):
    c = shape[1]
    x = rounded(shape)
    w = (rounded((c,)) + 1.5).requires_grad_(True) if affine else None
    b = rounded((c,)).requires_grad_(True) if affine else None
    rm, rv = rounded((c,)), torch.rand(c).round(decimals=3) + 0.5
    rm0, rv0 = rm.clone(), rv.clone()

    def fn(x):
        out = F.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum, eps=eps)
        return out, {}

    x = x.clone().requires_grad_(True)
    out = fn(x)[0]
    gout = rounded(out.shape)
    (out * gout).sum().backward()
    lines.append(f"case batch_norm {attrs_str(dict(training=training, momentum=momentum, eps=eps, affine=affine))}")
    for name, t in [("x", x), ("gout", gout), ("out", out), ("gx", x.grad), ("rm", rm0), ("rv", rv0),
                    ("rm_after", rm), ("rv_after", rv)]:
        fmt_tensor(name, t)
    if affine:
        for name, t in [("w", w), ("b", b), ("gw", w.grad), ("gb", b.grad)]:
            fmt_tensor(name, t)
    lines.append("end")


batch_norm_case((2, 3, 3, 2), True, 0.1, True)
batch_norm_case((4, 3), True, 0.3, False)
batch_norm_case((1, 2, 3, 3), True, 0.1, True)
batch_norm_case((2, 3, 2, 2), False, 0.1, True)
batch_norm_case((5, 2), False, 0.1, False, eps=1e-3)

# ---- pixel shuffle ----
case("pixel_shuffle", dict(factor=2), rounded((1, 8, 2, 3)), lambda x: F.pixel_shuffle(x, 2))
case("pixel_shuffle", dict(factor=3), rounded((9, 1, 2)), lambda x: F.pixel_shuffle(x, 3))
case("pixel_unshuffle", dict(factor=2), rounded((2, 1, 4, 6)), lambda x: F.pixel_unshuffle(x, 2))

with open(OUT, "w") as f:
    f.write(f"# PyTorch {torch.__version__} reference values for tests/test_nn_ops.cpp; "
            "generated by make_nn_reference.py, do not edit\n")
    f.write("\n".join(lines) + "\n")
print(f"wrote {OUT}: {len(lines)} lines, {os.path.getsize(OUT)} bytes")
