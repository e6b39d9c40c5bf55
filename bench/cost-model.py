"""Fits the GPU cost model's constants to the H200's measured steps and shows the fit and its predictions.

Reads the `gateloop bench --device cuda-sim --json` reports that bench/cost-model.sh writes: each kernel's distinct
launches with the features the model charges (DRAM and issue time at the chip's rates, waves of resident threads,
the longest thread's instructions, global loads and loads of a new line) and each GEMM's shapes. The model
(src/Runtime/Simulator/GpuCostModel.cs) prices a launch at launch + max(dram, issue, cache, waves * (instructions * t_instr
+ cached loads * t_hit + new-line loads * t_miss)) and a GEMM at call + max(flops / rate, bytes / bandwidth). The six
constants are fitted (Nelder-Mead on the squared log ratios, inside physical bounds) to the workloads marked "fit"
and the others are predicted. With --compare, nothing is fitted: two runs' estimates at the constants the runtime
holds (the fit on the code the H200 measured) are set side by side, step by step and kernel by kernel, to show what a
rebuild of the kernels is estimated to gain. Standard library only.
Usage: python3 bench/cost-model.py DIR
       python3 bench/cost-model.py --compare BEFORE_DIR AFTER_DIR
"""
import json
import math
import sys

DRAM_BYTES_PER_S = 4.3e12  # as in GpuCostModel.H200: measured with PyTorch on the same chip

# The H200, 2026-11-30, revision ee3865f, fp32, `gateloop bench` (cuBLAS GEMMs): milliseconds per profiled phase
# ("elementwise" here is every kernel that is not a GEMM or the optimizer, as the phases outside those were small),
# the unprofiled step, the SimpleGateLoop layer's passes and seed-config generation (669-1,300 tokens/s: 1/985).
MEASURED = {
    "tiny": {"step": 14.9, "elementwise": 15.3, "gemm": 3.0, "optimizer": 0.56},
    "small": {"step": 41.1, "elementwise": 43.2, "gemm": 9.6, "optimizer": 1.0},
    "seed": {"step": 173.4, "elementwise": 158.5, "gemm": 24.4, "optimizer": 3.3, "token": 1000 / 985},
    "seed-batch64": {"step": 176.1, "elementwise": 122.5 + 4.8, "gemm": 51.5, "optimizer": 3.3},
    "long": {"forward": 3.99, "backward": 34.0},
}
FIT = {("tiny", "elementwise"), ("tiny", "gemm"), ("tiny", "optimizer"),
       ("seed", "elementwise"), ("seed", "gemm"), ("seed", "optimizer")}
NAMES = ["LaunchSeconds", "SecondsPerDependentInstruction", "SecondsPerCachedLoad", "SecondsPerMissedLoad", "GemmFlopsPerSecond",
         "GemmCallSeconds"]
# What is physically plausible for each on an H200: a launch with the profiler's synchronisation after it, a dependent
# instruction (a few cycles at 1.98 GHz), a load that hits L1, one that goes to L2 or DRAM, cuBLAS's fp32 rate (the
# chip's peak is 67 TFLOP/s), a cuBLAS call. The fit searches inside these bounds, log-uniformly.
BOUNDS = [(2e-6, 3e-5), (2.5e-10, 5e-9), (5e-9, 1e-7), (5e-8, 1e-6), (5e12, 6.7e13), (2e-6, 3e-5)]


def kernel_ms(kernel, p):
    launch, t_instr, t_hit, t_miss, rate, call = p
    ms = 0.0
    for count, dram, issue, cache, waves, longest, loads, misses in kernel["launch_features"]:
        ms += count * (launch + max(dram, issue, cache, waves * (longest * t_instr + (loads - misses) * t_hit + misses * t_miss)))
    for count, m, n, k, size in kernel["gemm_shapes"]:
        ms += count * (call + max(2.0 * m * n * k / rate, size * (m * k + k * n + 2 * m * n) / DRAM_BYTES_PER_S))
    return ms * 1000


def phases(estimate, p):
    per, out = estimate["per"], {}
    for kernel in estimate["kernels"].values():
        phase = kernel["phase"] if kernel["phase"] in ("gemm", "optimizer") else "elementwise"
        out[phase] = out.get(phase, 0.0) + kernel_ms(kernel, p) / per
    out["step"] = sum(out.values())
    return out


def predictions(reports, p):
    rows = []
    for name, measured in MEASURED.items():
        report = reports[name]
        if name == "long":
            est = {"forward": phases(report["estimated_forward"], p)["step"], "backward": phases(report["estimated_backward"], p)["step"]}
        else:
            est = phases(report["estimated_step"], p)
            if report.get("estimated_token"):
                est["token"] = phases(report["estimated_token"], p)["step"]
        rows += [(name, what, ms, est[what]) for what, ms in measured.items()]
    return rows


def constants(x):
    # Any real x maps inside its bound: a logistic between the logs of the ends.
    return [lo * (hi / lo) ** (1 / (1 + math.exp(-v))) for v, (lo, hi) in zip(x, BOUNDS)]


def loss(reports, x):
    p = constants(x)
    return sum(math.log(e / m) ** 2 for name, what, m, e in predictions(reports, p) if (name, what) in FIT)


def nelder_mead(f, x0, steps=600):
    n = len(x0)
    simplex = [list(x0)] + [[x + (0.7 if i == j else 0) for j, x in enumerate(x0)] for i in range(n)]
    values = [f(x) for x in simplex]
    for _ in range(steps):
        order = sorted(range(n + 1), key=values.__getitem__)
        simplex, values = [simplex[i] for i in order], [values[i] for i in order]
        centroid = [sum(x[j] for x in simplex[:-1]) / n for j in range(n)]
        def toward(t):
            return [c + t * (w - c) for c, w in zip(centroid, simplex[-1])]
        reflected = toward(-1)
        fr = f(reflected)
        if fr < values[0]:
            expanded = toward(-2)
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = toward(0.5)
            fc = f(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:
                simplex = [simplex[0]] + [[(a + b) / 2 for a, b in zip(simplex[0], x)] for x in simplex[1:]]
                values = [values[0]] + [f(x) for x in simplex[1:]]
    best = min(range(n + 1), key=values.__getitem__)
    return simplex[best], values[best]


def main(directory):
    reports = {name: json.load(open(f"{directory}/{name}.json")) for name in MEASURED}
    x, _ = nelder_mead(lambda x: loss(reports, x), [0.0] * len(BOUNDS))
    p = constants(x)
    print("Fitted constants (GpuCostModel.H200):")
    for name, value in zip(NAMES, p):
        print(f"- {name} = {value:.3g}")
    print()
    print("| workload | what | H200 measured, ms | estimated, ms | estimated / measured | |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, what, m, e in predictions(reports, p):
        print(f"| {name} | {what} | {m:.2f} | {e:.2f} | {e / m:.2f} | {'fit' if (name, what) in FIT else 'predicted'} |")


def compare(before_dir, after_dir, top=8):
    runs = [{name: json.load(open(f"{d}/{name}.json")) for name in MEASURED} for d in (before_dir, after_dir)]
    print("Estimated at the runtime's constants (GpuCostModel.H200); not measured.")
    print()
    print("| workload | what | H200 measured (before), ms | estimated before, ms | launches | estimated after, ms | launches | after / before |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in MEASURED:
        for what in ("step", "token", "forward", "backward"):
            pair = [r[name].get("estimated_" + what) for r in runs]
            if None in pair:
                continue
            measured = MEASURED[name].get(what)
            b, a = pair
            print(f"| {name} | {what} | {measured if measured else '—'} | {b['ms']:.2f} | {b['launches']:,} | {a['ms']:.2f} | {a['launches']:,} | {a['ms'] / b['ms']:.2f} |")
    print()
    for name in ("seed", "seed-batch64"):
        before, after = (r[name]["estimated_step"]["kernels"] for r in runs)
        print(f"{name}, the step's largest kernels before, estimated ms (launches) before → after:")
        print()
        print("| kernel | before | after | bound after |")
        print("| --- | --- | --- | --- |")
        names = sorted(set(before) | set(after), key=lambda k: -max(before.get(k, {}).get("ms", 0), after.get(k, {}).get("ms", 0)))
        for k in names[:top + 4]:
            b, a = before.get(k), after.get(k)
            cell = lambda e: f"{e['ms']:.2f} ({e['launches']})" if e else "—"
            print(f"| {k} | {cell(b)} | {cell(a)} | {a['bound'] if a else '—'} |")
        print()


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1])
