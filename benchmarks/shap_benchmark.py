"""KernelSHAP throughput of both implementations: one process vs 1 and 2 Ray worker nodes, in one run.

    venv/bin/python benchmarks/shap_benchmark.py [--rows 64] [--chunks 2] [--runs 3]

Explains the same rows of the wine example (examples/wine_shap), exactly (all
2^13 coalitions), with each implementation: the `shap` library (split by rows)
and the paper's KernelSHAP in kernel_shap.py (split by rows, and by batches of
coalitions), on a local Ray cluster (head with no CPUs, in private network and
PID namespaces like the tests') with one worker node of 1 CPU, then two.

Runs are paired: each run's driver times the work in one process (itself),
the Ray call and, for the splits by rows, the same split over plain processes,
seconds apart and each run starting with another of them, so the speed of a
shared virtual machine, which drifts by 10-30 % over a minute, changes them
alike; a speed-up is the median of the runs' own ratios. Prints
the median of --runs runs and where the rest of the time goes: the work each
task does, timed inside it, against the wall clock of the whole Ray call
(scheduling, moving the model and the rows, the driver's share), the BLAS and
OpenMP threads a task and the driver may use, and the CPU Ray's own processes
take while the cluster idles. Needs Linux with `unshare`.
"""
from __future__ import annotations

import argparse
import json
import os
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
# The same work in the driver's own process: each implementation's one-process function. Split by
# rows, the same function also runs in plain processes (no Ray), one per worker node: what this
# machine gives two processes, against which Ray's share of the gap shows.
ONE_PROCESS = {
    "shap, by rows": ("wine_shap.shap_values", True),
    "kernel_shap, by rows": ("wine_shap.kernel_shap_values", True),
    "kernel_shap, by coalitions": ("wine_shap.kernel_shap_values", False),
}
# How long the idle cluster's CPU use is sampled after the runs.
IDLE_SAMPLE_SECONDS = 20

RAY_DRIVER = """
import json, multiprocessing, os, statistics, sys, time
sys.path.insert(0, {example!r})
import numpy as np, ray, threadpoolctl, wine_shap
ray.init(address={address!r}, _node_ip_address={head_ip!r}, logging_level="ERROR", runtime_env={{"working_dir": {example!r}}})
features, scores, _ = wine_shap.parse_csv(wine_shap.wine_csv())
model = wine_shap.train(features, scores)
background, rows, chunks = wine_shap.background(features), features[:{rows}], {chunks}
one_process, workers = {one_process}, len(ray.nodes()) - 1

@ray.remote(num_cpus=1)
def threads():
    import os, threadpoolctl
    return {{"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
             "pools": sorted({{pool["num_threads"] for pool in threadpoolctl.threadpool_info()}})}}

@ray.remote(num_cpus=1)
def work_of_a_task(model, background, rows):
    # The same share of the work, timed inside a task: the floor the Ray call can reach.
    started = time.perf_counter()
    one_process(model, background, rows)
    return time.perf_counter() - started

def timed(call):
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result

def plain_processes():
    parts = [part for part in np.array_split(rows, chunks) if len(part)]
    return np.vstack(processes.starmap(one_process, [(model, background, part) for part in parts]))

measurements = {{"one_process": lambda: one_process(model, background, rows), "seconds": lambda: {run}}}
if {plain} and workers > 1:
    os.environ["OMP_NUM_THREADS"] = "1"  # as Ray sets for a 1-CPU task
    processes = multiprocessing.get_context("spawn").Pool(workers)
    os.environ.pop("OMP_NUM_THREADS")
    processes.starmap(one_process, [(model, background, rows[:1])] * 2 * workers)  # warm-up: packages load
    measurements["plain"] = plain_processes
one_process(model, background, rows[:1])  # warm-up: packages load
{run}  # warm-up: workers start, packages load, the model is in the object store
# Each run starts with another of them, so a drift of the machine's speed falls on each in turn.
order = list(measurements)[{attempt} % len(measurements):] + list(measurements)[:{attempt} % len(measurements)]
times = {{}}
for name in order:
    times[name], result = timed(measurements[name])
    if name == "seconds":
        values = result
share = np.array_split(rows, chunks)[0]
# The share timed while the other workers do the same (all at once), as in the timed call.
task = statistics.median(ray.get([work_of_a_task.remote(model, background, share) for _ in range(workers)]))
print("RESULT", json.dumps({{**times, "values": values.tolist(), "task": task, "threads": ray.get(threads.remote()),
                            "driver_threads": sorted({{pool["num_threads"] for pool in threadpoolctl.threadpool_info()}})}}))
"""


def _process_ticks() -> dict[str, int]:
    """CPU ticks used so far per kind of process: the executable, or for Python the script or module it runs."""
    ticks: dict[str, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:  # the process ended
            continue
        words = [word.decode(errors="replace") for word in argv if word]
        if not words:
            continue
        if len(words) == 1 and " " in words[0]:  # a title written over argv: ray::IDLE, ray-dashboard-NodeHead-0 ...
            kind = words[0].split()[0]
            kind = "ray-dashboard-* modules" if kind.startswith("ray-dashboard-") else kind
        elif Path(words[0]).name.startswith("python"):
            kind = next((Path(word).name for word in words[1:] if word.endswith(".py") or word.startswith("ray.")),
                        "forkserver" if "multiprocessing.forkserver" in " ".join(words) else "python")
        else:
            kind = Path(words[0]).name
        ticks[kind] = ticks.get(kind, 0) + int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


def idle_cpu(seconds: float) -> tuple[float, list[tuple[str, float]]]:
    """The cores this machine kept busy over `seconds` (/proc/stat: all but idle and iowait), and the
    cores each kind of process used meanwhile, busiest first."""
    def busy() -> tuple[int, int]:
        ticks = [int(field) for field in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(ticks) - ticks[3] - ticks[4], sum(ticks)

    (busy_before, total_before), processes_before = busy(), _process_ticks()
    time.sleep(seconds)
    (busy_after, total_after), processes_after = busy(), _process_ticks()
    cores = (busy_after - busy_before) / (total_after - total_before) * os.cpu_count()
    per_tick = 1 / os.sysconf("SC_CLK_TCK") / seconds
    kinds = [(kind, (used - processes_before.get(kind, 0)) * per_tick) for kind, used in processes_after.items()]
    return cores, sorted((kind for kind in kinds if kind[1] > 0), key=lambda kind: -kind[1])


def main() -> int:
    import numpy as np

    import wine_shap
    from tests.helpers.ray_sandbox import OBJECT_STORE_BYTES, RAY, RaySandbox

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--chunks", type=int, default=2, help="Ray tasks per call (default 2: one per worker node)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure; the table shows their median (default 3)")
    args = parser.parse_args()

    features, scores, _ = wine_shap.parse_csv(wine_shap.wine_csv())
    model = wine_shap.train(features, scores)
    reference = wine_shap.shap_values(model, wine_shap.background(features), features[: args.rows])
    columns = {1: "Ray, 1 worker", 2: "Ray, 2 workers"}
    figures: dict[str, dict[str, list]] = {name: {} for name in IMPLEMENTATIONS}
    diagnosis: dict[str, dict] = {name: {} for name in IMPLEMENTATIONS}
    sandbox = RaySandbox()
    workers = []
    try:
        sandbox.start_head(["--num-cpus=0"], memory=2**30)
        for count in columns:
            workers.append(sandbox.spawn(
                [RAY, "start", f"--address={sandbox.gcs_address}", f"--node-ip-address=127.0.0.{10 + count}", "--num-cpus=1",
                 f"--memory={2**30}", f"--object-store-memory={OBJECT_STORE_BYTES}", "--block"], f"worker-{count}"))
            sandbox.wait_for_nodes(1 + count)
            for name, run in IMPLEMENTATIONS.items():
                runs = figures[name].setdefault(count, [])
                for attempt in range(args.runs):
                    print(f"{name}, one process and Ray with {count} worker node(s), run {attempt + 1}/{args.runs} ...",
                          file=sys.stderr, flush=True)
                    code = RAY_DRIVER.format(example=str(EXAMPLE), address=sandbox.gcs_address, head_ip=sandbox.head_ip,
                                             rows=args.rows, chunks=args.chunks, run=run, one_process=ONE_PROCESS[name][0],
                                             plain=ONE_PROCESS[name][1], attempt=attempt)
                    result = json.loads(sandbox.python(code, timeout=900).split("RESULT ", 1)[1])
                    difference = float(np.abs(np.array(result["values"]) - reference).max())
                    if difference > wine_shap.TOLERANCE:
                        raise SystemExit(f"{name} on Ray differs from one-process shap by {difference}")
                    runs.append(result)
                diagnosis[name]["threads"], diagnosis[name]["driver threads"] = result["threads"], result["driver_threads"]
        idle, idle_processes = idle_cpu(IDLE_SAMPLE_SECONDS)
    finally:
        for worker in workers:
            sandbox.signal(worker, 15)
        sandbox.close()

    def median(name: str, count: int, key) -> float:
        return statistics.median(key(run) for run in figures[name][count])

    print(f"KernelSHAP, exact ({wine_shap.EXACT_NSAMPLES} coalitions), {args.rows} rows, {args.chunks} Ray tasks per call, "
          f"{wine_shap.BACKGROUND_ROWS} background rows; median of {args.runs} paired runs")
    plain = f"{len(columns)} plain processes"
    headers = ["one process", *columns.values(), plain]
    print(f"{'seconds':28}" + "".join(f"{header:>20}" for header in headers))
    for name in IMPLEMENTATIONS:
        local = statistics.median(run["one_process"] for count in columns for run in figures[name][count])
        times = [median(name, count, lambda run: run["seconds"]) for count in columns]
        shown = [f"{value:19.2f}s" for value in (local, *times)]
        shown.append(f"{median(name, 2, lambda run: run['plain']):19.2f}s" if ONE_PROCESS[name][1] else f"{'-':>20}")
        print(f"{name:28}" + "".join(shown))
    print(f"\n{'vs one process, per run':28}" + "".join(f"{header:>20}" for header in (*columns.values(), plain))
          + f"{'Ray vs plain':>20}")
    for name in IMPLEMENTATIONS:
        ratios = [median(name, count, lambda run: run["one_process"] / run["seconds"]) for count in columns]
        shown = [f"{value:19.2f}x" for value in ratios]
        if ONE_PROCESS[name][1]:
            shown.append(f"{median(name, 2, lambda run: run['one_process'] / run['plain']):19.2f}x")
            shown.append(f"{median(name, 2, lambda run: run['plain'] / run['seconds']):19.2f}x")
        print(f"{name:28}" + "".join(shown))
    print("\nWhere the 2-worker time goes: one task's share of the work (1/--chunks of the rows), in the driver's process,"
          " timed inside a Ray task while the other worker idles, and while both work; the rest of the Ray call's wall"
          " clock is scheduling, moving objects and the driver.")
    chunks_per_worker = -(-args.chunks // 2)
    for name, found in diagnosis.items():
        share = median(name, 2, lambda run: run["one_process"]) / args.chunks
        alone, beside = median(name, 1, lambda run: run["task"]), median(name, 2, lambda run: run["task"])
        wall = median(name, 2, lambda run: run["seconds"])
        print(f"  {name:26} share: here {share:5.2f}s, in a task {alone:5.2f}s, in a task beside another {beside:5.2f}s;"
              f" rest {wall - beside * chunks_per_worker:5.2f}s; threads: driver {found['driver threads']},"
              f" task OMP_NUM_THREADS={found['threads']['OMP_NUM_THREADS']}, pools {found['threads']['pools']}")
    cores = os.cpu_count()
    print(f"Ray's own processes (GCS, raylets, dashboard and agents of 3 nodes), idle over {IDLE_SAMPLE_SECONDS} s: {idle:.2f}"
          f" of {cores} cores; two 1-CPU workers that share the rest run at most {cores - idle:.2f}x one process.\n  busiest: "
          + ", ".join(f"{kind} {used:.3f}" for kind, used in idle_processes[:6]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
