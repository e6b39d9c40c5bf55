#!/usr/bin/env bash
# Mixed precision on the CPU: gateloop-small trained twice on the default corpus with the same data, seed, steps and
# options, once with fp32 products and once with --precision bf16 (every GEMM's inputs rounded to bf16, sums in fp32, as
# cuBLAS's bf16 GEMM computes on a GPU). Each run is then evaluated over the whole validation split, with fp32
# products and with bf16 ones. Writes both runs' metrics, logs and evaluations, a plot of the two curves and a table.
# Usage: bash bench/bf16.sh [OUT_DIR] [STEPS=300]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/bf16-$(date -u +%Y%m%d-%H%M%S)}
steps=${2:-300}
mkdir -p "$out"
dotnet build src/Models -c Release -nologo -v q >/dev/null
gateloop() { dotnet src/Models/bin/Release/net10.0/gateloop.dll "$@"; }
{ date -u +%FT%TZ; git rev-parse --short HEAD; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; } > "$out/machine.txt"
options=(--model gateloop-small --device cpu --steps "$steps" --lr 1e-3 --seed 0 --validate-every 50 --generate-every 0 --checkpoint-every "$steps")
for precision in fp32 bf16; do
  echo "\$ gateloop train ${options[*]} --precision $precision --out $out/$precision" | tee "$out/$precision.log"
  gateloop train "${options[@]}" --precision "$precision" --out "$out/$precision" >> "$out/$precision.log" 2>&1
  for products in fp32 bf16; do
    gateloop eval --device cpu --checkpoint "$out/$precision" --precision "$products" --json > "$out/$precision/eval-$products.json"
  done
done
uptime >> "$out/machine.txt"
gateloop plot "$out/fp32" "$out/bf16" --out "$out/bf16.png"
# The curves and the table are the result; the weights are megabytes that no one needs to keep.
rm -f "$out"/*/*.safetensors "$out"/*/.lock
python3 - "$out" <<'PY' | tee "$out/summary.md"
import json, math, sys
out = sys.argv[1]
runs = {p: [json.loads(l) for l in open(f"{out}/{p}/metrics.jsonl")] for p in ("fp32", "bf16")}
evals = {(p, q): json.load(open(f"{out}/{p}/eval-{q}.json"))["bpc"] for p in ("fp32", "bf16") for q in ("fp32", "bf16")}
steps = [1] + [r["step"] for r in runs["fp32"] if r.get("valid_loss") is not None]
print("| step | train loss, fp32 | train loss, bf16 | valid bpc (one batch), fp32 | valid bpc (one batch), bf16 |")
print("| --- | --- | --- | --- | --- |")
for s in steps:
    a, b = (next(r for r in runs[p] if r["step"] == s) for p in ("fp32", "bf16"))
    v = lambda r: "" if r.get("valid_loss") is None else f"{r['valid_loss'] / math.log(2):.4f}"
    print(f"| {s} | {a['train_loss']:.4f} | {b['train_loss']:.4f} | {v(a)} | {v(b)} |")
print()
print("| trained with | valid bpc, whole split, fp32 products | valid bpc, whole split, bf16 products |")
print("| --- | --- | --- |")
for p in ("fp32", "bf16"):
    print(f"| {p} | {evals[(p, 'fp32')]:.4f} | {evals[(p, 'bf16')]:.4f} |")
d = evals[("bf16", "bf16")] - evals[("fp32", "fp32")]
print(f"\nbf16 run (bf16 products) - fp32 run (fp32 products): {d:+.4f} bpc (margin 0.02)")
PY
