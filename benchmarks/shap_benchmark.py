"""KernelSHAP throughput of both implementations: one process vs 1 and 2 Ray worker nodes, in one run.

    venv/bin/python benchmarks/shap_benchmark.py [--rows 64] [--chunks 2] [--runs 3]

Explains the same rows of the wine example (examples/wine_shap), exactly (all
2^13 coalitions), with each implementation: the `shap` library (split by rows)
and the paper's KernelSHAP in kernel_shap.py (split by rows, and by batches of
coalitions). Each runs in this process, then on a local Ray cluster (head with
no CPUs, in private network and PID namespaces like the tests') with one worker
node of 1 CPU, then two. Prints the median of --runs runs, the speed-up of two
workers over one process, and where the rest of the time goes: the work each
task does, timed inside it, against the wall clock of the whole Ray call
(scheduling, moving the model and the rows, the driver's share), and the BLAS
and OpenMP threads a task and this process may use. Needs Linux with `unshare`.
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

IMPLEMENTATIONS = {
    "shap, by rows": "wine_shap.shap_values_on_ray(model, background, rows, chunks)",
    "kernel_shap, by rows": "wine_shap.kernel_shap_on_ray(model, background, rows, chunks, 'rows')",
    "kernel_shap, by coalitions": "wine_shap.kernel_shap_on_ray(model, background, rows, chunks, 'coalitions')",
}
ONE_PROCESS = {
    "shap, by rows": lambda model, background, rows: __import__("wine_shap").shap_values(model, background, rows),
    "kernel_shap, by rows": lambda model, background, rows: __import__("wine_shap").kernel_shap_values(model, background, rows),
}
ONE_PROCESS["kernel_shap, by coalitions"] = ONE_PROCESS["kernel_shap, by rows"]

RAY_DRIVER = """
import json, statistics, sys, time
sys.path.insert(0, {example!r})
import numpy as np, ray, wine_shap
ray.init(address={address!r}, _node_ip_address={head_ip!r}, logging_level="ERROR", runtime_env={{"working_dir": {example!r}}})
features, scores, _ = wine_shap.parse_csv(wine_shap.wine_csv())
model = wine_shap.train(features, scores)
background, rows, chunks = wine_shap.background(features), features[:{rows}], {chunks}

@ray.remote(num_cpus=1)
def threads():
    import os, threadpoolctl
    return {{"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
             "pools": sorted({{pool["num_threads"] for pool in threadpoolctl.threadpool_info()}})}}

@ray.remote(num_cpus=1)
def work_of_a_task(model, background, rows, implementation):
    # The same share of the work, timed inside a task: the floor the Ray call can reach.
    started = time.perf_counter()
    if implementation == "shap":
        wine_shap.shap_values(model, background, rows)
    else:
        wine_shap.kernel_shap_values(model, background, rows)
    return time.perf_counter() - started

{run}  # warm-up: workers start, packages load, the model is in the object store
started = time.perf_counter()
values = {run}
wall = time.perf_counter() - started
share = np.array_split(rows, chunks)[0]
# The share timed while the other workers do the same (all at once), as in the timed call.
task = statistics.median(ray.get([work_of_a_task.remote(model, background, share, {kind!r}) for _ in range(len(ray.nodes()) - 1)]))
print("RESULT", json.dumps({{"seconds": wall, "values": values.tolist(), "task": task, "threads": ray.get(threads.remote())}}))
"""


def main() -> int:
    import numpy as np
    import threadpoolctl

    import wine_shap
    from tests.helpers.ray_sandbox import OBJECT_STORE_BYTES, RAY, RaySandbox

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--chunks", type=int, default=2, help="Ray tasks per call (default 2: one per worker node)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure; the table shows their median (default 3)")
    args = parser.parse_args()

    features, scores, _ = wine_shap.parse_csv(wine_shap.wine_csv())
    model = wine_shap.train(features, scores)
    background, rows = wine_shap.background(features), features[: args.rows]
    reference = wine_shap.shap_values(model, background, rows)
    figures: dict[str, dict[str, float]] = {name: {} for name in IMPLEMENTATIONS}
    for name, run in ONE_PROCESS.items():
        run(model, background, rows[:1])  # warm-up
        timings = []
        for attempt in range(args.runs):
            print(f"{name}, one process, run {attempt + 1}/{args.runs} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            run(model, background, rows)
            timings.append(time.perf_counter() - started)
        figures[name]["one process"] = statistics.median(timings)
    local_threads = sorted({pool["num_threads"] for pool in threadpoolctl.threadpool_info()})

    diagnosis: dict[str, dict] = {}
    sandbox = RaySandbox()
    workers = []
    try:
        sandbox.start_head(["--num-cpus=0"], memory=2**30)
        for count in (1, 2):
            workers.append(sandbox.spawn(
                [RAY, "start", f"--address={sandbox.gcs_address}", f"--node-ip-address=127.0.0.{10 + count}", "--num-cpus=1",
                 f"--memory={2**30}", f"--object-store-memory={OBJECT_STORE_BYTES}", "--block"], f"worker-{count}"))
            sandbox.wait_for_nodes(1 + count)
            for name, run in IMPLEMENTATIONS.items():
                code = RAY_DRIVER.format(example=str(EXAMPLE), address=sandbox.gcs_address, head_ip=sandbox.head_ip, rows=args.rows,
                                         chunks=args.chunks, run=run, kind="shap" if name.startswith("shap") else "kernel_shap")
                timings, tasks = [], []
                for attempt in range(args.runs):
                    print(f"{name}, Ray, {count} worker node(s), run {attempt + 1}/{args.runs} ...", file=sys.stderr, flush=True)
                    result = json.loads(sandbox.python(code, timeout=900).split("RESULT ", 1)[1])
                    difference = float(np.abs(np.array(result["values"]) - reference).max())
                    if difference > wine_shap.TOLERANCE:
                        raise SystemExit(f"{name} on Ray differs from one-process shap by {difference}")
                    timings.append(result["seconds"])
                    tasks.append(result["task"])
                figures[name][f"Ray, {count} worker{'s' if count > 1 else ''}"] = statistics.median(timings)
                diagnosis.setdefault(name, {})[count] = statistics.median(tasks)
                diagnosis[name]["threads"] = result["threads"]
    finally:
        for worker in workers:
            sandbox.signal(worker, 15)
        sandbox.close()

    print(f"KernelSHAP, exact ({wine_shap.EXACT_NSAMPLES} coalitions), {args.rows} rows, {args.chunks} Ray tasks per call, "
          f"{wine_shap.BACKGROUND_ROWS} background rows; seconds, median of {args.runs} runs")
    columns = ["one process", "Ray, 1 worker", "Ray, 2 workers"]
    print(f"{'implementation':28}" + "".join(f"{column:>16}" for column in columns) + f"{'2 workers vs one process':>26}")
    for name, row in figures.items():
        print(f"{name:28}" + "".join(f"{row[column]:15.2f}s" for column in columns) + f"{row['one process'] / row['Ray, 2 workers']:25.2f}x")
    print("\nWhere the 2-worker time goes: one task's share of the work (1/--chunks of the rows), in this process,"
          " timed inside a Ray task while the other worker idles, and while both work; the rest of the Ray call's wall"
          f" clock is scheduling, moving objects and the driver. Threads: this process {local_threads}")
    for name, found in diagnosis.items():
        share = figures[name]["one process"] / args.chunks
        chunks_per_worker = -(-args.chunks // 2)
        wall = figures[name]["Ray, 2 workers"]
        print(f"  {name:26} share: here {share:5.2f}s, in a task {found[1]:5.2f}s, in a task beside another {found[2]:5.2f}s;"
              f" rest {wall - found[2] * chunks_per_worker:5.2f}s; task threads: OMP_NUM_THREADS={found['threads']['OMP_NUM_THREADS']},"
              f" pools {found['threads']['pools']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
