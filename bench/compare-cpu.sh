#!/usr/bin/env bash
# GateLoop.Compiler against the PyTorch reference on this CPU, in one run so the ratios share the machine's state.
# Needs: dotnet (builds gateloop), /usr/bin/python3 with torch (apt-get install python3-torch libopenblas0-pthread).
# Usage: bash bench/compare-cpu.sh [OUT_DIR]   (writes one JSON per measurement and prints the ratios)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/cpu-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"
dotnet build src/Models -c Release -nologo -v q >/dev/null
gateloop() { dotnet src/Models/bin/Release/net10.0/gateloop.dll "$@"; }
reference() { /usr/bin/python3 bench/reference/gateloop_reference.py "$@"; }

{ date -u +%FT%TZ; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; env | grep "^DOTNET_Enable" || true; } > "$out/machine.txt"
gateloop bench --device cpu --model gateloop-small --json > "$out/ours-small.json"
reference bench --config small --threads 2 --json > "$out/torch-small.json"
gateloop bench --device cpu --model enwik8 --steps 2 --json > "$out/ours-seed.json"
reference bench --config seed --threads 2 --json > "$out/torch-seed.json"
gateloop bench --device cpu --model long-context-mixer --json > "$out/ours-long.json"
reference long --dim 512 --seq 65536 --threads 2 --json > "$out/torch-long.json"
uptime >> "$out/machine.txt"

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
load = lambda name: json.load(open(f"{out}/{name}.json"))
print(f"isa: {load('ours-seed')['isa']} (ours); PyTorch's OpenBLAS kernels: {load('torch-seed').get('blas', {}).get('openblas_core')}")
for config in ("small", "seed"):
    ours, torch = load(f"ours-{config}"), load(f"torch-{config}")
    print(f"{config:5} train    {ours['train_tokens_per_s']:8.0f} vs {torch['train_tokens_per_s']:8.0f} tokens/s  {ours['train_tokens_per_s'] / torch['train_tokens_per_s']:5.2f}x")
    print(f"{config:5} generate {ours['generate_tokens_per_s']:8.1f} vs {torch['generate_tokens_per_s']:8.1f} tokens/s  {ours['generate_tokens_per_s'] / torch['generate_tokens_per_s']:5.1f}x")
    print(f"{config:5} memory   {ours['peak_memory_bytes'] / 2**20:8.0f} vs {torch['peak_memory_bytes'] / 2**20:8.0f} MiB peak")
ours, torch = load("ours-long"), load("torch-long")
print(f"long  forward  {ours['long_forward_s']:8.3f} vs {torch['long_forward_s']:8.3f} s  {torch['long_forward_s'] / ours['long_forward_s']:5.2f}x faster")
print(f"long  memory   {ours['peak_memory_bytes'] / 2**20:8.0f} vs {torch['peak_memory_bytes'] / 2**20:8.0f} MiB peak")
PY
