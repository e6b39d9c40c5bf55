#!/usr/bin/env bash
# Data-parallel training on this machine: N ranks of one thread each (mpirun binds each rank to a core) against one
# process using every core, the same global batch, alternated in one run so the ratios share the machine's state; and the
# all-reduce per step, after the backward and in buckets during it, for each bucket size.
# Needs: dotnet, Open MPI (apt-get install openmpi-bin).
# Usage: bash bench/distributed.sh [OUT_DIR] [MODEL] [RANKS] [BUCKETS_MB...]   (defaults: a new results folder, enwik8, 2, 1 4 16 25)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/distributed-$(date -u +%Y%m%d-%H%M%S)}
model=${2:-enwik8}
ranks=${3:-2}
buckets=("${@:4}")
[ ${#buckets[@]} -gt 0 ] || buckets=(1 4 16 25)
batch=2 accum=1 seq=256 steps=3
mkdir -p "$out"
dotnet build src/Models -c Release -nologo -v q >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
gateloop=(dotnet src/Models/bin/Release/net10.0/gateloop.dll bench --device cpu --model "$model" --grad-accum $accum --seq-len $seq --steps $steps --generate 0 --json)

{ date -u +%FT%TZ; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; } > "$out/machine.txt"
for b in "${buckets[@]}"; do
  "${gateloop[@]}" --batch $((batch * ranks)) < /dev/null > "$out/one-process-before-$b.json"
  mpirun -np "$ranks" "${gateloop[@]}" --batch $batch --bucket-mb "$b" < /dev/null > "$out/ranks-$b.json"
done
uptime >> "$out/machine.txt"

python3 - "$out" "$ranks" "${buckets[@]}" <<'PY'
import json, sys
out, ranks, buckets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for b in buckets:
    one, many = json.load(open(f"{out}/one-process-before-{b}.json")), json.load(open(f"{out}/ranks-{b}.json"))
    d = many["distributed"]
    print(f"bucket {b:>3} MB: {ranks} ranks {many['train_tokens_per_s']:7.0f} tokens/s vs 1 process {one['train_tokens_per_s']:7.0f} ({many['train_tokens_per_s'] / one['train_tokens_per_s']:.2f}x); "
          f"all-reduce after the backward {d['allreduce_ms_per_step']:6.1f} ms/step (step {d['step_ms_reduced_after_backward']:.0f} ms), "
          f"during it {d['exposed_allreduce_ms_per_step']:6.1f} ms waited of {d['overlapped_allreduce_ms_per_step']:6.1f} ms (step {many['step_ms']:.0f} ms): {d['overlap_hidden']:.0%} hidden")
PY
