#!/usr/bin/env bash
# Each SIMD tier of this CPU in one run: the native tier and those below it that the runtime's switches give
# (DOTNET_EnableAVX512=0 runs the AVX2 code on an AVX-512 machine). Per tier: the seed step's GEMM shapes against the
# tier's FMA peak (bench/GateLoop.Benchmarks gemm-peak), and seed-config generation with fp32, bf16 and int8 weights,
# against the PyTorch reference's generation measured in the same run (its training is not timed here).
# Needs: dotnet, /usr/bin/python3 with torch (apt-get install python3-torch libopenblas0-pthread).
# Usage: bash bench/cpu-tiers.sh [OUT_DIR] [SWITCH...]   (default: TIER=native, then DOTNET_EnableAVX512=0; any
#   VAR=VALUE is set for its runs, so TIER=native changes nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/tiers-$(date -u +%Y%m%d-%H%M%S)}
shift || true
switches=("$@")
[ ${#switches[@]} -gt 0 ] || switches=(TIER=native DOTNET_EnableAVX512=0)
mkdir -p "$out"
dotnet build src/Models -c Release -nologo -v q >/dev/null
dotnet build bench/GateLoop.Benchmarks -c Release -nologo -v q >/dev/null

{ date -u +%FT%TZ; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; } > "$out/machine.txt"
/usr/bin/python3 bench/reference/gateloop_reference.py bench --config seed --threads 2 --skip-train --json > "$out/torch-seed.json"
for switch in "${switches[@]}"; do
  tier=${switch/=/-}
  env "$switch" dotnet bench/GateLoop.Benchmarks/bin/Release/net10.0/GateLoop.Benchmarks.dll gemm-peak --json > "$out/gemm-$tier.json"
  for weights in fp32 bf16 int8; do
    env "$switch" dotnet src/Models/bin/Release/net10.0/gateloop.dll bench --device cpu --model enwik8 --batch 1 --grad-accum 1 \
      --steps 1 --weights "$weights" --json > "$out/seed-$tier-$weights.json"
  done
done
uptime >> "$out/machine.txt"

python3 - "$out" "${switches[@]}" <<'PY'
import json, sys
out, switches = sys.argv[1], sys.argv[2:]
load = lambda name: json.load(open(f"{out}/{name}.json"))
reference = load("torch-seed")
torch = reference["generate_tokens_per_s"]
print(f"PyTorch reference: OpenBLAS kernels {reference.get('blas', {}).get('openblas_core')}")
print("| isa (switch) | FMA peak, GFLOP/s per CPU s | " + " | ".join(r["shape"] for r in load(f"gemm-{switches[0].replace('=', '-', 1)}")["gemm"]) + " |")
print("| --- | --- |" + " --- |" * 4)
for switch in switches:
    g = load(f"gemm-{switch.replace('=', '-', 1)}")
    cells = " | ".join(f"{r['gflops_per_cpu_s']:.0f} ({r['share_of_peak']:.0%})" for r in g["gemm"])
    print(f"| {g['isa']} ({switch}) | {g['peak_gflops_per_cpu_s']:.0f} | {cells} |")
print(f"\nseed-config generation, tokens (bytes) per second; PyTorch reference {torch:.1f}")
print("| isa (switch) | fp32 | bf16 | int8 | int8 / fp32 | int8 × PyTorch |")
print("| --- | --- | --- | --- | --- | --- |")
for switch in switches:
    tier = switch.replace("=", "-", 1)
    rates = {w: load(f"seed-{tier}-{w}") for w in ("fp32", "bf16", "int8")}
    r = {w: b["generate_tokens_per_s"] for w, b in rates.items()}
    print(f"| {rates['fp32']['isa']} ({switch}) | {r['fp32']:.0f} | {r['bf16']:.0f} | {r['int8']:.0f} | {r['int8'] / r['fp32']:.2f}× | {r['int8'] / torch:.0f}× |")
PY
