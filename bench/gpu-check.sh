#!/usr/bin/env bash
# The CUDA check, in one run on the GPU machine (which has no .NET): agreement of CUDA with the CPU, training and
# generation rates of the seed config against PyTorch on the same GPU (fp32, then with TF32), the long
# SimpleGateLoop pass, start-up time, peak memory.
#
# Here:          ../shared/device/pack.sh            (puts the .NET runtime and a publish of gateloop in .device/)
# On the device: bash bench/gpu-check.sh             (with carry [".device"]; results go to $OUT, else bench/results/)
# Every figure lands in one folder with the date, the command, the GPU and the driver.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results}/gpu-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1

if ! command -v dotnet >/dev/null; then
  mkdir -p /tmp/dn && tar xJf .device/dotnet.tar.xz -C /tmp/dn
  export PATH=/tmp/dn:$PATH DOTNET_ROOT=/tmp/dn
fi
gateloop() { dotnet .device/app/gateloop.dll "$@"; }

echo "== environment ($(date -u +%FT%TZ)): bash bench/gpu-check.sh"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv | tee "$out/gpu.csv"
ldconfig -p | grep -E "libcublas|libcuda\.so" || echo "no cuBLAS / libcuda in ldconfig"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' || true

# Peak GPU memory of everything below, sampled every 100 ms.
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$out/gpu-memory-mib.txt" &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT

echo "== 1. CUDA agrees with the CPU: seed config, same weights and batch, first step's loss and gradient norm"
gateloop bench --model enwik8 --device cpu --steps 1 --generate 0 --json | tee "$out/seed-cpu.json"
gateloop bench --model enwik8 --device cuda --steps 5 --generate 128 --json | tee "$out/seed-cuda.json"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
cpu, cuda = (json.load(open(f"{out}/seed-{d}.json")) for d in ("cpu", "cuda"))
for key in ("loss", "grad_norm"):
    rel = abs(cpu[key] - cuda[key]) / abs(cpu[key])
    print(f"{key}: cpu {cpu[key]:.8f} cuda {cuda[key]:.8f} relative difference {rel:.2e} {'OK' if rel <= 1e-4 else 'FAIL (target 1e-4)'}")
PY

echo "== 2. the same workload in PyTorch eager fp32 on this GPU (re-runs the prefix to generate, as the seed does)"
python3 bench/reference/gateloop_reference.py bench --config seed --device cuda --json | tee "$out/seed-torch-cuda.json" || echo "PyTorch reference failed"
python3 - "$out" <<'PY' || true
import json, sys
out = sys.argv[1]
ours, torch = json.load(open(f"{out}/seed-cuda.json")), json.load(open(f"{out}/seed-torch-cuda.json"))
print(f"train:    {ours['train_tokens_per_s']:.0f} vs {torch['train_tokens_per_s']:.0f} tokens/s = {ours['train_tokens_per_s'] / torch['train_tokens_per_s']:.2f}x (target 1.0x)")
print(f"generate: {ours['generate_tokens_per_s']:.0f} vs {torch['generate_tokens_per_s']:.1f} tokens/s = {ours['generate_tokens_per_s'] / torch['generate_tokens_per_s']:.0f}x (target 100x)")
PY

echo "== 3. TF32 tensor cores for the fp32 GEMMs (--tf32), same workload"
gateloop bench --model enwik8 --device cuda --steps 5 --generate 0 --tf32 --json | tee "$out/seed-cuda-tf32.json"

echo "== 4. SimpleGateLoop 1 x 65,536 x 512, forward and backward (chunked scans: batch 1 leaves 512 lanes)"
gateloop bench --model long-context-mixer --device cuda --json | tee "$out/long-cuda.json"

echo "== 5. start-up: a short run twice (ILGPU compiles the PTX in each process; the driver caches its own JIT)"
for run in first second; do
  TIMEFORMAT="$run run: %R s"
  time gateloop bench --model enwik8 --device cuda --steps 1 --generate 0 > /dev/null
done

kill $sampler 2>/dev/null || true
echo "== peak GPU memory: $(sort -n "$out/gpu-memory-mib.txt" | tail -1) MiB"
echo "results in $out"
