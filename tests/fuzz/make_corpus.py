#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/TARGET/ (committed; rerun after
format changes). Model, checkpoint, config and ONNX seeds are real files written by latent: tiny CSV
runs of `latent train` and their `latent export` parts. IDX, CSV, PNG and request seeds are small
files in each format's variants (gzip and plain IDX, quoted and labelled CSV, every PNG colour type).
Regression inputs (crash-*) in those folders are kept.

usage: tests/fuzz/make_corpus.py BUILD/tools/latent
"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
corpus = os.path.join(root, "tests", "fuzz", "corpus")
latent = os.path.abspath(sys.argv[1])


def reset(target):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if not f.startswith("crash-"):
            os.remove(os.path.join(d, f))
    return d


def put(target, name, data):
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


for t in ["onnx", "onnx_import", "safetensors", "idx", "csv", "png", "config", "serve"]:
    reset(t)

# ---- latent runs: model.safetensors, checkpoint.safetensors, config.json, ONNX exports
work = tempfile.mkdtemp(prefix="latent_corpus_")
try:
    rows = ["a,b,c,y"] + [f"{i % 5 * 0.25},{-1 + i % 3},{5 + (i % 2)},{'cat' if i % 3 else 'dog'}" for i in range(24)]
    csv = os.path.join(work, "t.csv")
    open(csv, "w").write("\n".join(rows) + "\n")
    runs = [("deep", ["--latent-dim", "2"]), ("vae", ["--latent-dim", "2"]), ("linear", ["--latent-dim", "2"]),
            ("sparse", ["--latent-dim", "2", "--sparsity", "kl"]), ("deep", ["--latent-dim", "2", "--tied"])]
    for k, (model, extra) in enumerate(runs):
        out = os.path.join(work, f"run{k}")
        subprocess.run([latent, "train", "--model", model, "--data", csv, "--label-column", "y", "--epochs", "1",
                        "--batch-size", "8", "--quiet", "--out", out] + extra, check=True)
        shutil.copy(os.path.join(out, "model.safetensors"), os.path.join(corpus, "safetensors", f"{model}{k}_model.safetensors"))
        if k == 0:
            shutil.copy(os.path.join(out, "checkpoint.safetensors"), os.path.join(corpus, "safetensors", f"{model}{k}_checkpoint.safetensors"))
        shutil.copy(os.path.join(out, "config.json"), os.path.join(corpus, "config", f"{model}{k}_config.json"))
        parts = ["full", "encoder", "decoder", "anomaly"] if k < 2 else ["full"]
        for part in parts:
            for opset in (["13", "17"] if k == 0 and part == "full" else ["17"]):
                onnx = os.path.join(work, f"{model}{k}_{part}_op{opset}.onnx")
                subprocess.run([latent, "export", out, "--out", onnx, "--part", part, "--opset", opset], check=True,
                               stdout=subprocess.DEVNULL)
                for t in ["onnx", "onnx_import"]:
                    shutil.copy(onnx, os.path.join(corpus, t, os.path.basename(onnx)))
finally:
    shutil.rmtree(work)

# ---- IDX: images and labels, plain and gzip, a 1-d and a 4-d array
def idx(dims, data):
    return struct.pack(">I", 0x800 + len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)

images = idx([2, 4, 4], [(i * 37) % 256 for i in range(32)])
put("idx", "images-idx3-ubyte", images)
put("idx", "images-idx3-ubyte.gz", gzip.compress(images, mtime=0))
put("idx", "labels-idx1-ubyte", idx([2], [3, 7]))
put("idx", "labels-idx1-ubyte.gz", gzip.compress(idx([2], [3, 7]), mtime=0))
put("idx", "array-idx4-ubyte", idx([1, 2, 2, 2], range(8)))
fmnist = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
if os.path.exists(fmnist):  # the first image of Fashion-MNIST's test set, as the real file starts
    raw = gzip.open(fmnist).read(16 + 784)
    put("idx", "fashion-first-idx3-ubyte.gz", gzip.compress(idx([1, 28, 28], raw[16:]), mtime=0))

# ---- CSV: the fuzz target's run has columns a, b, c and label y (classes cat, dog)
csvs = {
    "plain.csv": "a,b,c,y\n0.5,0,5,cat\n1,-1,6,dog\n",
    "reordered.csv": "y,c,a,b\ndog,5,0.25,1\ncat,5.5,0,0\n",
    "quoted.csv": '"a","b","c","y"\n"1.5e-1",+2,"3",cat\n',
    "integer_labels.csv": "a,b,c,y\n1,2,3,0\n4,5,6,1\n",
    "extra_column.csv": "a,b,c,d,y\n1,2,3,4,cat\n",
    "missing_column.csv": "a,b,y\n1,2,cat\n",
    "crlf_blank_lines.csv": "a,b,c\r\n\r\n1,2,3\r\n \n4,5,6\r\n",
    "no_label.csv": "a,b,c\n0,0,0\n1,1,1\n",
    "nan.csv": "a,b,c,y\nnan,inf,-inf,cat\n",
}
for name, text in csvs.items():
    put("csv", name, text)

# ---- PNG: every colour type and bit depth libpng's simplified reader converts to gray
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

def png(width, height, depth, colour, rows, extra=b""):
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")

put("png", "gray8.png", png(4, 3, 8, 0, [bytes([(x * 60 + y * 20) % 256 for x in range(4)]) for y in range(3)]))
put("png", "gray16.png", png(2, 2, 16, 0, [b"\x00\x00\xff\xff", b"\x80\x00\x12\x34"]))
put("png", "gray1.png", png(9, 2, 1, 0, [b"\xaa\x80", b"\x55\x00"]))
put("png", "gray_alpha.png", png(2, 1, 8, 4, [b"\xff\x80\x40\xff"]))
put("png", "rgb.png", png(2, 2, 8, 2, [b"\xff\x00\x00\x00\xff\x00", b"\x00\x00\xff\x80\x80\x80"]))
put("png", "rgba.png", png(1, 2, 8, 6, [b"\xff\xff\xff\x80", b"\x10\x20\x30\xff"]))
put("png", "palette.png", png(3, 1, 8, 3, [b"\x00\x01\x02"], chunk(b"PLTE", b"\x00\x00\x00\xff\x00\x00\x00\xff\x00")))
put("png", "palette_trns.png", png(2, 1, 4, 3, [b"\x01"], chunk(b"PLTE", b"\x00\x00\x00\xff\xff\xff") + chunk(b"tRNS", b"\x80")))

# ---- serve: infer bodies (the seeds run_serve_fuzz.sh used)
bodies = [
    '{"id":"a","inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[5,6,7,8]]}],"outputs":[{"name":"score"}]}',
    '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1.5,-2e3,3,4]}],"parameters":{"preprocessed":true}}',
    '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]}',
    '{"inputs":[{"name":"x","shape":[1,5],"datatype":"INT64","data":[1,"a",null,true,{}]}],"outputs":[{"name":"nope"}]}',
    '{"instances":[[1,2,3,4],[0.5,0.25,0.125,1e-3]]}',
    '{"instances":[[1,2,3]]}',
    '{"inputs":[{"name":"image","shape":[2],"datatype":"BYTES","data":["iVBORw0KGgo=","QUJD"]}]}',
]
for i, b in enumerate(bodies):
    put("serve", f"body_{i + 1}.json", b)

for t in sorted(os.listdir(corpus)):
    files = os.listdir(os.path.join(corpus, t))
    print(f"{t}: {len(files)} files, {sum(os.path.getsize(os.path.join(corpus, t, f)) for f in files)} bytes")
