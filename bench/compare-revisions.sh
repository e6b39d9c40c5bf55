#!/usr/bin/env bash
# The cpu benchmarks of bench/compare-cpu.sh for an earlier revision and for this tree, alternated (A B A B) in one
# run so both see the same machine; prints each workload's ratio this/earlier and the spread between repeats.
# Usage: bash bench/compare-revisions.sh REV [OUT_DIR] [ROUNDS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bash bench/compare-revisions.sh REV [OUT_DIR] [ROUNDS]}
out=${2:-bench/results/revisions-$(date -u +%Y%m%d-%H%M%S)}
rounds=${3:-2}
mkdir -p "$out"
before=$(mktemp -d)
trap 'git worktree remove --force "$before" >/dev/null 2>&1 || true' EXIT
git worktree add -q --detach "$before" "$rev"
dotnet build "$before/src/Models" -c Release -nologo -v q >/dev/null
dotnet build src/Models -c Release -nologo -v q >/dev/null
{ date -u +%FT%TZ; echo "before $(git rev-parse "$rev"), after $(git rev-parse HEAD)$(git diff --quiet || echo ' + working tree')"; nproc; uptime; } > "$out/machine.txt"
for round in $(seq 1 "$rounds"); do
  for side in before after; do
    dll=src/Models/bin/Release/net10.0/gateloop.dll
    [ "$side" = before ] && dll="$before/$dll"
    dotnet "$dll" bench --device cpu --model gateloop-small --json > "$out/$side-small-$round.json"
    dotnet "$dll" bench --device cpu --model enwik8 --steps 2 --json > "$out/$side-seed-$round.json"
    dotnet "$dll" bench --device cpu --model long-context-mixer --json > "$out/$side-long-$round.json"
  done
done
uptime >> "$out/machine.txt"

python3 - "$out" "$rounds" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
load = lambda side, w, r: json.load(open(f"{out}/{side}-{w}-{r}.json"))
rows = [("small", "train_tokens_per_s", 1), ("small", "generate_tokens_per_s", 1), ("seed", "train_tokens_per_s", 1),
        ("seed", "generate_tokens_per_s", 1), ("long", "long_forward_s", -1), ("long", "long_backward_s", -1)]
for w, key, sign in rows:
    values = {s: [load(s, w, r)[key] for r in range(1, rounds + 1)] for s in ("before", "after")}
    best = {s: (max if sign > 0 else min)(v) for s, v in values.items()}
    ratio = (best["after"] / best["before"]) ** sign
    spread = max(((max(v) / min(v)) - 1) for v in values.values())
    print(f"{w:5} {key:22} before {best['before']:10.3f}  after {best['after']:10.3f}  after/before {ratio:5.3f} (higher is faster; repeats differ by up to {spread:.0%})")
PY
