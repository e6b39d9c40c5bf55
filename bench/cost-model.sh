#!/usr/bin/env bash
# The GPU cost model against the H200's measured steps: each workload of that run estimated from the PTX simulator's
# counts (`gateloop bench --device cuda-sim`, a sample of each launch's blocks simulated, the values computed on the
# host), then the model's few constants fitted on some workloads and checked on the others (bench/cost-model.py).
# Needs: dotnet, python3 (its standard library). Takes about 10 minutes on 2 cores.
# Usage: bash bench/cost-model.sh [OUT_DIR]   (writes one JSON per workload, then prints the fit)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/cost-model-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"
dotnet build src/Models -c Release -nologo -v q >/dev/null
gateloop() { dotnet src/Models/bin/Release/net10.0/gateloop.dll bench --device cuda-sim --no-device-check --steps 1 --json "$@"; }
{ date -u +%FT%TZ; git rev-parse --short HEAD; nproc; grep -m1 "model name" /proc/cpuinfo; } > "$out/machine.txt"
gateloop --model gateloop-tiny --generate 0 > "$out/tiny.json"
gateloop --model gateloop-small --generate 0 > "$out/small.json"
gateloop --model enwik8 --generate 32 > "$out/seed.json"
gateloop --model enwik8 --batch 64 --grad-accum 1 --generate 0 > "$out/seed-batch64.json"
gateloop --model long-context-mixer > "$out/long.json"
python3 bench/cost-model.py "$out" | tee "$out/fit.md"
