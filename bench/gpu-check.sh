#!/usr/bin/env bash
# The GPU check, in one run on the GPU machine (which has no .NET):
#   1. gateloop doctor: CUDA against the host backend for every model and layer (PTX audited, scalar math, GEMM,
#      every buffer and gradient). Nothing after it means anything if it fails, but all of it runs, for the record.
#   2. convergence: gateloop-small trained 300 steps with the seed's protocol on a held-out text, on CUDA, against
#      the PyTorch reference trained the same way on the same GPU (valid bpc within 0.03); then the seed config
#      300 steps, its valid bpc and time beside PyTorch's.
#   3. speed: seed-config training and generation against PyTorch eager fp32 on the same GPU, with --tf32 too, the
#      long SimpleGateLoop pass, start-up time, peak GPU memory.
# Every step is capped and the next runs regardless. What the steps print lands in log.txt as it comes, so a run
# cut short still reports what it saw; the folder of results is tarred at the end.
#
# Here:          ../shared/device/pack.sh            (puts the .NET runtime and a publish of gateloop in .device/)
# On the device: bash bench/gpu-check.sh             (carry [".device"], timeout 540 s; results go to $OUT)
# A dry run of the script's logic without a GPU (minutes):
#   GATELOOP="dotnet src/Models/bin/Release/net10.0/gateloop.dll" PYTHON=/usr/bin/python3 DEVICE=cpu \
#   DOCTOR_DEVICE=ilgpu-cpu STEPS=3 bash bench/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
device=${DEVICE:-cuda} doctor_device=${DOCTOR_DEVICE:-${DEVICE:-cuda}} steps=${STEPS:-300}
stamp=gpu-$(date -u +%Y%m%d-%H%M%S)
# On the device only a few files may come back: work outside $OUT, send the log and a tar.
if [ -n "${OUT:-}" ]; then work=/tmp/gpu-check; back=$OUT; else work=bench/results; back=$work/$stamp; fi
out=$work/$stamp
mkdir -p "$out" "$back"
exec > >(tee "$back/log.txt") 2>&1

if [ -z "${GATELOOP:-}" ]; then
  if ! command -v dotnet >/dev/null; then
    mkdir -p /tmp/dn && tar xJf .device/dotnet.tar.xz -C /tmp/dn
    export PATH=/tmp/dn:$PATH DOTNET_ROOT=/tmp/dn
  fi
  GATELOOP="dotnet $PWD/.device/app/gateloop.dll"
fi
# timeout runs programs, not shell functions: gateloop is a script, which convergence.sh runs too.
printf '#!/bin/sh\nexec %s "$@"\n' "$GATELOOP" > "$out/gateloop" && chmod +x "$out/gateloop"
export GATELOOP=$out/gateloop PYTHON=${PYTHON:-python3}
gateloop=$GATELOOP python=$PYTHON

# run NAME SECONDS COMMAND...: one capped step, its exit code and time reported (on stderr, which goes to the log
# too, so that a step's stdout can go to a file).
run() {
  local name=$1 cap=$2 started=$SECONDS
  shift 2
  echo "== $name (cap ${cap} s)" >&2
  timeout "$cap" "$@"
  local code=$?
  echo "-- exit $code after $((SECONDS - started)) s$([ $code -eq 124 ] && echo ', cut at the cap')" >&2
  return $code
}

echo "== environment ($(date -u +%FT%TZ)): bash bench/gpu-check.sh (device $device, doctor on $doctor_device, $steps steps)"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv | tee "$out/gpu.csv"
ldconfig -p | grep -E "libcublas|libcuda\.so" || echo "no cuBLAS / libcuda in ldconfig"
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))' || true

# Peak GPU memory of everything below, sampled every 100 ms.
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$out/gpu-memory-mib.txt" 2>/dev/null &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT

run "1. doctor: $doctor_device against the host backend, every model and layer" 150 \
  "$gateloop" doctor --device "$doctor_device" --json > "$out/doctor.json"
"$python" - "$out/doctor.json" <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
worst = {}
for r in d["results"]:
    ratio = float("inf") if r["error"] is None else (r["error"] / r["tolerance"] if r["tolerance"] else (0 if r["error"] == 0 else float("inf")))
    if ratio > worst.get(r["section"], (-1, None))[0]:
        worst[r["section"]] = (ratio, r)
for section, (ratio, r) in worst.items():
    print(f"  {section:18} closest to its tolerance: {r['name']:44} {r['error']} of {r['tolerance']}")
for r in d["results"]:
    if not r["passed"]:
        print(f"  FAIL {r['section']} {r['name']}: {r['error']} > {r['tolerance']}")
for f in d["ptx_findings"]:
    print(f"  PTX FAIL {f['kernel']}: {f['fault']}: {f['line']}")
print(f"doctor on {d['device']}: {'PASSED' if d['passed'] else 'FAILED'} ({len(d['results'])} checks, {d['ptx_kernels']} kernels' PTX)")
PY

run "2. convergence: gateloop-small, $steps steps on $device, against PyTorch on the same device (margin 0.03 bpc)" 240 \
  bash bench/convergence.sh gateloop-small small "$device" "$out/conv-small" "$steps" 0.03
run "2b. convergence: the seed config (enwik8), $steps steps, beside PyTorch" 300 \
  env DATA="$out/conv-small/held-out.txt" bash bench/convergence.sh enwik8 seed "$device" "$out/conv-seed" "$steps" 0.03

# --kernels: each kernel's milliseconds in the profiled step and in generation, for the cost model (bench/cost-model.py)
run "3. speed: seed config (fp32)" 120 "$gateloop" bench --model enwik8 --device "$device" --steps 5 --generate 128 --kernels --json > "$out/seed.json"
cat "$out/seed.json"; echo
run "3b. the same workload in PyTorch eager fp32 (re-runs the prefix to generate, as the seed does)" 120 \
  "$python" bench/reference/gateloop_reference.py bench --config seed --device "$device" --json > "$out/seed-torch.json"
"$python" - "$out" <<'PY' || true
import json, sys
out = sys.argv[1]
ours, torch = json.load(open(f"{out}/seed.json")), json.load(open(f"{out}/seed-torch.json"))
print(f"train:    {ours['train_tokens_per_s']:.0f} vs {torch['train_tokens_per_s']:.0f} tokens/s = {ours['train_tokens_per_s'] / torch['train_tokens_per_s']:.2f}x")
print(f"generate: {ours['generate_tokens_per_s']:.0f} vs {torch['generate_tokens_per_s']:.1f} tokens/s = {ours['generate_tokens_per_s'] / torch['generate_tokens_per_s']:.0f}x")
PY
run "3c. seed config with --tf32" 60 "$gateloop" bench --model enwik8 --device "$device" --steps 5 --generate 0 --tf32 --json > "$out/seed-tf32.json"
cat "$out/seed-tf32.json"; echo
run "3d. SimpleGateLoop 1 x 65,536 x 512, forward and backward" 60 "$gateloop" bench --model long-context-mixer --device "$device" --json > "$out/long.json"
cat "$out/long.json"; echo
for n in first second; do
  run "3e. start-up, $n run (ILGPU compiles the PTX in each process; the driver caches its own JIT)" 60 \
    "$gateloop" bench --model enwik8 --device "$device" --steps 1 --generate 0 --no-device-check > /dev/null
done

kill $sampler 2>/dev/null || true
echo "== peak GPU memory: $(sort -n "$out/gpu-memory-mib.txt" 2>/dev/null | tail -1) MiB"
# Checkpoints and the text are not results (the seed config's is 285 MB with its optimizer state).
rm -f "$out/gateloop" "$out"/conv-*/held-out.txt "$out"/conv-*/ours-run/*.safetensors
if [ -n "${OUT:-}" ]; then
  tar czf "$OUT/$stamp.tar.gz" -C "$work" "$stamp" && echo "results in $stamp.tar.gz: unpack under bench/results/"
else
  echo "results in $out"
fi
