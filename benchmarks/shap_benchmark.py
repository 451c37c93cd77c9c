"""KernelSHAP throughput: one process vs 1 and 2 Ray worker nodes, in one run.

    venv/bin/python benchmarks/shap_benchmark.py [--rows 48] [--chunks 4]

Explains the same rows of the wine example (examples/wine_shap) three ways:
with the `shap` library in this process, then split into --chunks Ray tasks
on a local Ray cluster (head with no CPUs, started in private network and PID
namespaces like the tests') with one worker node of 1 CPU, then two. Prints
rows per second for each and the speed-ups. Needs Linux with `unshare`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "wine_shap"
sys.path[:0] = [str(ROOT), str(EXAMPLE)]

RAY_DRIVER = """
import json, sys, time
sys.path.insert(0, {example!r})
import ray, wine_shap
ray.init(address={address!r}, _node_ip_address={head_ip!r}, logging_level="ERROR", runtime_env={{"working_dir": {example!r}}})
features, scores, _ = wine_shap.parse_csv(wine_shap.wine_csv())
model = wine_shap.train(features, scores)
background, rows = wine_shap.background(features), features[:{rows}]
wine_shap.shap_values_on_ray(model, background, rows[:{chunks}], {chunks})  # warm-up: workers start, packages load
started = time.perf_counter()
values = wine_shap.shap_values_on_ray(model, background, rows, {chunks})
print("RESULT", json.dumps({{"seconds": time.perf_counter() - started, "values": values.tolist()}}))
"""


def main() -> int:
    import numpy as np

    import wine_shap
    from tests.helpers.ray_sandbox import OBJECT_STORE_BYTES, RAY, RaySandbox

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per row; the table shows their median (default 3)")
    args = parser.parse_args()

    features, scores, _ = wine_shap.parse_csv(wine_shap.wine_csv())
    model = wine_shap.train(features, scores)
    background, rows = wine_shap.background(features), features[: args.rows]
    wine_shap.shap_values(model, background, rows[:1])  # warm-up
    timings = []
    for attempt in range(args.runs):
        print(f"one process, run {attempt + 1}/{args.runs} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        single = wine_shap.shap_values(model, background, rows)
        timings.append(time.perf_counter() - started)
    figures = {"one process": statistics.median(timings)}

    sandbox = RaySandbox()
    workers = []
    try:
        sandbox.start_head(["--num-cpus=0"], memory=2**30)
        for count in (1, 2):
            workers.append(sandbox.spawn(
                [RAY, "start", f"--address={sandbox.gcs_address}", f"--node-ip-address=127.0.0.{10 + count}", "--num-cpus=1",
                 f"--memory={2**30}", f"--object-store-memory={OBJECT_STORE_BYTES}", "--block"], f"worker-{count}"))
            sandbox.wait_for_nodes(1 + count)
            code = RAY_DRIVER.format(example=str(EXAMPLE), address=sandbox.gcs_address, head_ip=sandbox.head_ip, rows=args.rows, chunks=args.chunks)
            timings = []
            for attempt in range(args.runs):
                print(f"Ray, {count} worker node(s), run {attempt + 1}/{args.runs} ...", file=sys.stderr, flush=True)
                output = sandbox.python(code, timeout=900)
                result = json.loads(output.split("RESULT ", 1)[1])
                difference = float(np.abs(np.array(result["values"]) - single).max())
                if difference > wine_shap.TOLERANCE:
                    raise SystemExit(f"Ray values differ from one-process values by {difference}")
                timings.append(result["seconds"])
            figures[f"Ray, {count} worker node{'s' if count > 1 else ''} (1 CPU each)"] = statistics.median(timings)
    finally:
        for worker in workers:
            sandbox.signal(worker, 15)
        sandbox.close()

    base = figures["one process"]
    print(f"KernelSHAP, exact ({wine_shap.EXACT_NSAMPLES} coalitions), {args.rows} rows, {args.chunks} Ray tasks, "
          f"{wine_shap.BACKGROUND_ROWS} background rows; median of {args.runs} runs")
    print(f"{'':38} {'seconds':>8} {'rows/s':>8} {'speed-up':>9}")
    for name, seconds in figures.items():
        print(f"{name:38} {seconds:8.2f} {args.rows / seconds:8.1f} {base / seconds:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
