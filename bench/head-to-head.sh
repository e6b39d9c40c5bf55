#!/usr/bin/env bash
# The three small models (same parameter budget) trained the same way on the default corpus: same steps, seed, data
# and options. Writes each run's directory (metrics, loss plot, the whole-split evaluation), a plot of the three
# curves and a table of their valid bpc (no tokens/s: the runs share the machine with whatever else runs).
# Usage: bash bench/head-to-head.sh [OUT_DIR] [STEPS=300]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/head-to-head-$(date -u +%Y%m%d-%H%M%S)}
steps=${2:-300}
mkdir -p "$out"
dotnet build src/Models -c Release -nologo -v q >/dev/null
gateloop() { dotnet src/Models/bin/Release/net10.0/gateloop.dll "$@"; }
options=(--device cpu --steps "$steps" --lr 1e-3 --seed 0 --validate-every 50 --generate-every 0 --checkpoint-every "$steps")
models=(gateloop-small attention-small hybrid-small)
for model in "${models[@]}"; do
  echo "\$ gateloop train --model $model ${options[*]} --out $out/$model" | tee "$out/$model.log"
  gateloop train --model "$model" "${options[@]}" --out "$out/$model" >> "$out/$model.log" 2>&1
  # Training validates on one random batch; the whole validation split is the number to compare.
  gateloop eval --device cpu --checkpoint "$out/$model" --json > "$out/$model/eval.json"
done
gateloop plot "${models[@]/#/$out/}" --out "$out/head-to-head.png"
# The curves and the table are the result; the weights are megabytes that no one needs to keep.
rm -f "$out"/*/*.safetensors "$out"/*/.lock
python3 - "$out" "${models[@]}" <<'PY'
import json, sys
out, models = sys.argv[1], sys.argv[2:]
print("| model | parameters | valid bpc, whole split (`gateloop eval`) | valid bpc, last training validation (one batch) |")
print("| --- | --- | --- | --- |")
for m in models:
    rows = [json.loads(l) for l in open(f"{out}/{m}/metrics.jsonl")]
    valid = [r for r in rows if r.get("valid_loss") is not None][-1]
    whole = json.load(open(f"{out}/{m}/eval.json"))
    params = next(l for l in open(f"{out}/{m}.log") if l.startswith("model ")).split(", ")[-1].split()[0]
    print(f"| `{m}` | {params} | {whole['bpc']:.4f} | {valid['valid_loss'] / 0.6931471805599453:.4f} (step {valid['step']}) |")
PY
