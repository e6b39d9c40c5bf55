#!/usr/bin/env bash
# Reduced-precision weights on this CPU, in one run: seed-config generation with fp32, bf16 and int8 weights against
# the PyTorch reference, and the valid bpc of one trained checkpoint held in each format.
# Needs: dotnet (builds gateloop), /usr/bin/python3 with torch (apt-get install python3-torch libopenblas0-pthread).
# Usage: bash bench/precision.sh [OUT_DIR] [CHECKPOINT]
#   without CHECKPOINT, trains gateloop-small for 300 steps on the default corpus first (as bench/head-to-head.sh does)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/precision-$(date -u +%Y%m%d-%H%M%S)}
checkpoint=${2:-}
mkdir -p "$out"
dotnet build src/Models -c Release -nologo -v q >/dev/null
gateloop() { dotnet src/Models/bin/Release/net10.0/gateloop.dll "$@"; }
reference() { /usr/bin/python3 bench/reference/gateloop_reference.py "$@"; }

if [ -z "$checkpoint" ]; then
  checkpoint=$(mktemp -d)/gateloop-small
  trap 'rm -rf "$(dirname "$checkpoint")"' EXIT
  gateloop train --model gateloop-small --device cpu --steps 300 --lr 1e-3 --seed 0 --validate-every 300 --generate-every 0 \
    --checkpoint-every 300 --out "$checkpoint" > "$out/train.log" 2>&1
fi
echo "checkpoint: $checkpoint ($(grep -o '"Model": *"[^"]*"' "$checkpoint/config.json"))" > "$out/machine.txt"
{ date -u +%FT%TZ; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; env | grep "^DOTNET_Enable" || true; } >> "$out/machine.txt"
reference bench --config seed --threads 2 --json > "$out/torch-seed.json"
for weights in fp32 bf16 int8; do
  gateloop bench --device cpu --model enwik8 --batch 1 --grad-accum 1 --steps 1 --weights "$weights" --json > "$out/ours-seed-$weights.json"
  gateloop eval --device cpu --checkpoint "$checkpoint" --weights "$weights" --json > "$out/eval-$weights.json"
done
uptime >> "$out/machine.txt"

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
load = lambda name: json.load(open(f"{out}/{name}.json"))
torch = load("torch-seed")["generate_tokens_per_s"]
base = load("eval-fp32")["bpc"]
print(f"PyTorch reference, seed config: {torch:.1f} tokens/s generated; ours on isa {load('ours-seed-fp32')['isa']}")
print("| weights | MB read per token (seed config) | seed-config generation, tokens/s | × PyTorch | valid bpc | Δ bpc vs fp32 |")
print("| --- | --- | --- | --- | --- | --- |")
for weights in ("fp32", "bf16", "int8"):
    bench, bpc = load(f"ours-seed-{weights}"), load(f"eval-{weights}")["bpc"]
    rate = bench["generate_tokens_per_s"]
    print(f"| {weights} | {bench['weight_bytes_per_token'] / 1e6:.1f} | {rate:.0f} | {rate / torch:.0f}× | {bpc:.4f} | {bpc - base:+.4f} |")
PY
