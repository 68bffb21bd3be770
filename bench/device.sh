#!/usr/bin/env bash
# The GPU benchmarks as one prepared command for a lent H200 (device time is scarce: ~15 minutes a
# session, the machine's start included). Run from the repository root on the device:
#
#   bash bench/device.sh [check] [throughput] [images] [binarized_mnist]     (in the order given)
#
#   check            the CUDA tests (tests/test_fast.py -k cuda): bf16 + CUDA graph vs fp32      ~1 min
#   throughput       bench/throughput.py against diffusers (issue 6)                             ~5 min
#   images           bench/images.py: dead leaves (2 nets), bark, MNIST (issue 4)               ~9 min
#   binarized_mnist  bench/binarized_mnist.py (issue 3)                                          ~8 min
#
# One session's 15 minutes hold the machine's start and about 12 minutes of this: `check throughput`,
# or `images`, or `binarized_mnist`, one call with timeout_s=600 (a call may run 10 minutes at most,
# and the step limits below keep each group inside it, kill grace included).
#
# Each step runs under its own timeout and its JSON and log are copied to $OUT as soon as it ends, so a
# step cut short loses only itself. Inputs that do not travel with the checkout are carried:
#   .devdata/  the data sets (`make devdata` copies them from ../shared/data)
#   .whl/      diffusers and the packages it needs that the device lacks (`make devwheels`)
# e.g. run(command="bash bench/device.sh check throughput", carry=[".devdata", ".whl"], timeout_s=600)
set -u
PY=${PY:-python3}  # the device's python3 has CUDA torch; a local dry run can name .venv/bin/python
OUT=${OUT:-runs/device}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
[ -d .devdata ] && export THERMODIFF_DATA="$PWD/.devdata"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"

step() {  # name, seconds, command...: run, log, copy results
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s): $*"
    local t0=$SECONDS
    timeout --signal=INT --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.log"
    echo "== $name: rc=$rc in $((SECONDS - t0)) s"
    for f in bench/results/"$name".json; do [ -f "$f" ] && cp "$f" "$OUT/"; done
}

for what in "$@"; do
    case $what in
    check) step check 90 "$PY" -m pytest -q -rs tests/test_fast.py -k cuda ;;
    throughput)
        if ls .whl/*.whl >/dev/null 2>&1; then
            "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
                --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
        fi
        step throughput 450 "$PY" bench/throughput.py
        ;;
    images) step images 575 "$PY" bench/images.py --device cuda ;;
    binarized_mnist) step binarized_mnist 575 "$PY" bench/binarized_mnist.py --device cuda ;;
    *) echo "unknown step: $what (check, throughput, images, binarized_mnist)" && exit 2 ;;
    esac
done
