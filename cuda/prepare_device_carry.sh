#!/usr/bin/env bash
# Builds the CUDA-enabled release build and collects what a bare GPU machine needs to run the
# CUDA check (cuda/device_check.sh) into .devcarry/ (git-ignored), under 60 MiB:
#   bin/       latent, test_cuda, cuda_bench (stripped)
#   lib/       liblatent.so.0 (stripped) and the non-CUDA shared libraries it needs that an
#              Ubuntu-like image lacks (fmt, gfortran, quadmath, zlib); OpenBLAS as lib/libopenblas.so.0.xz
#              (36 MiB raw; device_check.sh unpacks it)
#   fallback/  libstdc++ and libgcc_s of this machine, used only if the device's are too old
#   data/fashion-mnist/  the test set and the first 12,800 training images (100 batches of 128)
#   MANIFEST   sizes, build configuration, required GLIBC versions
# CUDA libraries (cuBLAS, cuDNN) are NOT carried (hundreds of MiB): the device provides them.
# usage: cuda/prepare_device_carry.sh [BUILD_DIR=build-cuda]   (JOBS=1 by default: shared cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${1:-build-cuda}
jobs=${JOBS:-1}
carry=.devcarry
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Dcuda=enabled -Dbuildtype=release
fi
grep -q "cuda_elementwise" "$build/build.ninja" || { echo "error: $build is not a CUDA build (meson -Dcuda=enabled)"; exit 1; }
ninja -C "$build" -j"$jobs" tools/latent tests/test_cuda bench/cuda_bench

rm -rf "$carry"
mkdir -p "$carry/bin" "$carry/lib" "$carry/fallback" "$carry/data/fashion-mnist"
for exe in tools/latent tests/test_cuda bench/cuda_bench; do
  strip -o "$carry/bin/$(basename "$exe")" "$build/$exe"
done
strip -o "$carry/lib/liblatent.so.0" "$build/liblatent.so.0"

# Shared libraries outside glibc/libstdc++/CUDA that the binaries load.
libs=$(for f in "$build/liblatent.so.0" "$build/tools/latent" "$build/tests/test_cuda" "$build/bench/cuda_bench"; do
         ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'
       done | sort -u)
for lib in $libs; do
  name=$(basename "$lib")
  case "$name" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libcuda.so*) ;;   # glibc, driver
    libcublas*|libcudnn*|libcudart*|libnvrtc*|libnvJitLink*) ;;                        # from the device
    liblatent.so*) ;;
    libstdc++.so*|libgcc_s.so*) cp -L "$lib" "$carry/fallback/$name" ;;
    libopenblas.so*) xz -6 -T1 -c "$lib" > "$carry/lib/$name.xz" ;;
    *) cp -L "$lib" "$carry/lib/$name" ;;
  esac
done

# Fashion-MNIST: the full test set, the first 12,800 training images/labels as a valid IDX file.
src=/usr/share/datasets/fashion-mnist
if [ -f "$src/train-images-idx3-ubyte.gz" ]; then
  cp "$src/t10k-images-idx3-ubyte.gz" "$src/t10k-labels-idx1-ubyte.gz" "$carry/data/fashion-mnist/"
  python3 - "$src" "$carry/data/fashion-mnist" 12800 <<'PY'
import gzip, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name, header, item in (("train-images-idx3-ubyte.gz", 16, 784), ("train-labels-idx1-ubyte.gz", 8, 1)):
    raw = gzip.open(f"{src}/{name}").read()
    head = bytearray(raw[:header])
    struct.pack_into(">I", head, 4, n)  # the count field after the magic number
    with gzip.open(f"{dst}/{name}", "wb", compresslevel=9) as f:
        f.write(bytes(head) + raw[header:header + n * item])
PY
else
  echo "warning: $src not found; the device check will train on no data"
fi

{
  echo "built $(date -u +%FT%TZ) on $(uname -n) from $(git rev-parse --short HEAD 2>/dev/null || echo '?') (+ working tree)"
  echo "build dir: $build; nvcc: $(/usr/local/cuda/bin/nvcc --version | tail -1)"
  echo "GLIBC versions required:"
  for f in "$carry"/bin/* "$carry"/lib/*.so*; do
    case "$f" in *.xz) continue ;; esac
    objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -1 | sed "s|^|  $(basename "$f"): |"
  done
  echo "GLIBCXX versions required:"
  for f in "$carry"/bin/* "$carry"/lib/liblatent.so.0; do
    objdump -T "$f" 2>/dev/null | grep -o 'GLIBCXX_[0-9.]*' | sort -Vu | tail -1 | sed "s|^|  $(basename "$f"): |"
  done
  echo "files:"
  (cd "$carry" && find . -type f -printf '  %10s %p\n' | sort -k2)
} > "$carry/MANIFEST"
cat "$carry/MANIFEST"
total=$(du -sb "$carry" | cut -f1)
echo "total: $((total / 1024 / 1024)) MiB ($total bytes) in $carry"
if [ "$total" -gt $((60 * 1024 * 1024)) ]; then echo "error: over 60 MiB"; exit 1; fi
