#!/usr/bin/env bash
# The one-shot CUDA check on a lent GPU machine (H100/H200, Ubuntu-like, nvcc 13, PyTorch+CUDA in
# /opt/torch/.venv, no OpenBLAS/fmt, no network). Runs from the repository root with .devcarry/
# (made here by cuda/prepare_device_carry.sh) carried along. Every step is logged to $OUT/<step>.log;
# a failing step does not stop the others; $OUT/summary.txt lists each step's exit status.
# Steps (typically about 2 minutes; each under its own timeout, 545 s in all at worst):
#   env       nvidia-smi, library resolution (ldd), torch/CUDA versions
#   test_cuda the doctest suite: every CUDA kernel against the CPU backend, autograd, training steps
#   train     latent train --device cuda --model conv --epochs 1 --limit-batches 100 (and the same
#             on cpu for comparison), then `latent eval` of the CUDA-trained run on the CPU
#   bench     cuda_bench: conv and dense AE ms/step on the GPU against PyTorch on the same GPU
# usage: bash cuda/device_check.sh        (OUT defaults to ./device_out)
set -u
set -x
root=$(pwd)
carry=$root/.devcarry
out=${OUT:-$root/device_out}
mkdir -p "$out"
exec > >(tee "$out/device_check.log") 2>&1
start_all=$(date +%s)
failed=""
summary() { echo "$*" | tee -a "$out/summary.txt"; }

# step NAME TIMEOUT_S CMD...: runs CMD under a timeout, output to the console and $OUT/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  echo "=================== step $name (timeout ${limit}s): $*"
  local t0=$(date +%s)
  if [ "$(type -t "$1")" = function ]; then  # shell functions run in a child bash under the timeout
    export -f "$1"
    timeout --kill-after=10 "$limit" bash -c "$*" > >(tee "$out/$name.log") 2>&1
  else
    timeout --kill-after=10 "$limit" "$@" > >(tee "$out/$name.log") 2>&1
  fi
  local rc=$?
  sleep 0.2
  local dt=$(( $(date +%s) - t0 ))
  if [ "$rc" -eq 0 ]; then
    summary "ok     $name (${dt}s)"
  else
    summary "FAILED $name: exit $rc$([ "$rc" -eq 124 ] && echo ' (timeout)') after ${dt}s; see $name.log"
    failed="$failed $name"
  fi
  return 0
}

[ -d "$carry/bin" ] || { summary "FAILED setup: $carry/bin is missing (run cuda/prepare_device_carry.sh and carry .devcarry)"; exit 1; }

# ---- libraries: carried ones in a writable folder, then the device's CUDA libraries ----
libdir=$(mktemp -d)/lib
mkdir -p "$libdir"
cp -a "$carry"/lib/* "$libdir"/
if [ -f "$libdir/libopenblas.so.0.xz" ]; then
  if command -v xz > /dev/null; then xz -dc "$libdir/libopenblas.so.0.xz" > "$libdir/libopenblas.so.0"
  else python3 -c "import lzma,sys; open(sys.argv[2],'wb').write(lzma.open(sys.argv[1]).read())" \
         "$libdir/libopenblas.so.0.xz" "$libdir/libopenblas.so.0"; fi
  rm -f "$libdir/libopenblas.so.0.xz"
fi
PY=/opt/torch/.venv/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
cuda_dirs=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
         /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib64 \
         /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu*/lib /opt/torch/.venv/lib/python3*/site-packages/torch/lib; do
  [ -d "$d" ] && case ":$cuda_dirs:" in *":$d:"*) ;; *) cuda_dirs="$cuda_dirs:$d" ;; esac
done
export LD_LIBRARY_PATH="$libdir$cuda_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Use this machine's libstdc++ only if the device's is too old for the binaries.
if ldd "$carry/bin/test_cuda" 2>&1 | grep -q "GLIBCXX.*not found\|libstdc++.*not found"; then
  summary "note: the device's libstdc++ is too old; using the carried one"
  cp -a "$carry"/fallback/* "$libdir"/
fi
# Where libcudnn.so.9 (linked) or libcublas.so.13/.12 (loaded with dlopen) is missing from every
# folder above and from the loader cache, look further.
have_lib() {
  local d
  for d in ${LD_LIBRARY_PATH//:/ }; do compgen -G "$d/$1*" > /dev/null && return 0; done
  ldconfig -p 2>/dev/null | grep -q "$1"
}
if ldd "$carry/lib/liblatent.so.0" 2>&1 | grep -q "not found" || ! have_lib libcublas.so.1; then
  extra=$(timeout 20 find /usr /opt -xdev \( -name 'libcublas.so.1[23]*' -o -name 'libcublasLt.so.1[23]*' -o -name 'libcudnn.so.9*' \) 2>/dev/null \
          | xargs -r -n1 dirname | sort -u | tr '\n' ':')
  [ -n "$extra" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:${extra%:}"
fi
export NVIDIA_TF32_OVERRIDE=0 carry PY  # no TF32 anywhere: CUDA results are compared with the CPU's

env_info() {
  nvidia-smi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  cat "$carry/MANIFEST"
  for f in "$carry/lib/liblatent.so.0" "$carry/bin/test_cuda" "$carry/bin/latent" "$carry/bin/cuda_bench"; do
    echo "--- ldd $f"; ldd "$f"
  done
  echo "--- cuBLAS (dlopen'ed: libcublas.so.13, else .12) and cuDNN candidates in LD_LIBRARY_PATH:"
  for d in ${LD_LIBRARY_PATH//:/ }; do ls "$d" 2>/dev/null | grep -E '^lib(cublas|cublasLt|cudnn)\.so\.[0-9]+$' | sed "s|^|  $d/|"; done
  ldd "$carry/lib/liblatent.so.0" | grep -q "not found" && { echo "MISSING LIBRARIES"; return 1; }
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), torch.cuda.get_device_name())"
  nproc; uname -a; cat /etc/os-release | head -2; ldd --version | head -1
  return 0
}
step env 40 env_info

cd "$out"  # runs and scratch files land in $OUT
step test_cuda 120 "$carry/bin/test_cuda" --duration=true

data=$carry/data/fashion-mnist
step train_cuda 90 "$carry/bin/latent" train --device cuda --model conv --epochs 1 --limit-batches 100 \
  --limit-test 2000 --seed 0 --data "$data" --out "$out/run-conv-cuda" --metrics "$out/metrics-cuda.jsonl"
step train_cpu 90 "$carry/bin/latent" train --device cpu --model conv --epochs 1 --limit-batches 100 \
  --limit-test 2000 --seed 0 --data "$data" --out "$out/run-conv-cpu" --metrics "$out/metrics-cpu.jsonl"
step eval_cuda_run_on_cpu 40 "$carry/bin/latent" eval "$out/run-conv-cuda" --data "$data" --limit 2000
echo "--- metrics (cuda, then cpu):"; cat "$out/metrics-cuda.jsonl" "$out/metrics-cpu.jsonl" 2>/dev/null
rm -f "$out"/run-conv-*/checkpoint.safetensors  # keep the returned files small

step bench 120 "$carry/bin/cuda_bench" --steps 300 --warmup 30 --torch "env -u LD_LIBRARY_PATH $PY" \
  --script "$root/bench/cuda_bench_torch.py"
LATENT_CUDNN_BENCHMARK=1 step bench_cudnn_find 45 "$carry/bin/cuda_bench" --steps 300 --warmup 30

summary "total $(( $(date +%s) - start_all ))s; failed steps:${failed:- none}"
cat "$out/summary.txt"
[ -z "$failed" ]
