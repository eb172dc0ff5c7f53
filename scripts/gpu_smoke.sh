#!/usr/bin/env bash
# First GPU check: install the tree, judge a few candidates on CUDA, keep every log under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/kw-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST=9.0 KERNELWRIGHT_CACHE=/tmp/kwcache
python3 -m pip install -q --no-deps --no-build-isolation -e . > "$OUT/install.log" 2>&1 || { tail -20 "$OUT/install.log"; exit 1; }
python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name(0))"
v() { echo "== $*"; timeout 300 kernelwright verify "$@" --json --no-compile-baseline > "$OUT/v.json" 2> "$OUT/v.err"; rc=$?
      python3 -c "import json,sys; d=json.load(open('$OUT/v.json')); t=d.get('timing') or {}; print('rc=$rc', d['verdict'], [(r['check'], r['detail'][:300]) for r in d.get('reasons',[])], 'cand', (t.get('candidate_ms') or {}).get('median'), 'eager', (t.get('eager_ms') or {}).get('median'), 'floor', t.get('floor_ms'), d.get('phases_s')); print('  findings:', d.get('findings'))" 2>&1 || { echo "rc=$rc"; tail -c 1500 "$OUT/v.err"; }; }
v tests/fixtures/tasks/gelu_mul.py tests/fixtures/candidates/gelu_mul_torch.py --device cuda
v examples/elementwise/task.py examples/elementwise/triton_kernel.py --device cuda
v examples/softmax/task.py examples/softmax/triton_kernel.py --device cuda
v examples/elementwise/task.py examples/elementwise/cuda_inline.py --device cuda
v examples/elementwise/task.py examples/elementwise/cuda_inline.py --device cuda
