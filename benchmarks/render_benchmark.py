"""Whole-process time of `python -m raykube.render` per stack, next to the floor.

The floor is `python -c "import pulumi_kubernetes.core.v1"`: what any Pulumi
Kubernetes program pays before doing anything. raykube's own cost is the
difference; the ratio shows whether it stays small next to that floor.

    venv/bin/python benchmarks/render_benchmark.py [--runs 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"timing the floor, {args.runs} runs ...", file=sys.stderr, flush=True)
    floor = statistics.median(timed([sys.executable, "-c", "import pulumi_kubernetes.core.v1"]) for _ in range(args.runs))
    print(f"floor: import pulumi_kubernetes.core.v1   median {floor:6.2f} s  ({args.runs} runs)")
    print(f"{'stack':8} {'render s':>9} {'ratio':>7} {'own cost s':>11}")
    for stack_file in sorted((ROOT / "stacks").glob("Pulumi.*.yaml")):
        stack = stack_file.stem.removeprefix("Pulumi.")
        print(f"rendering {stack}, {args.runs} runs ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as out:
            render = statistics.median(
                timed([sys.executable, "-m", "raykube.render", "--stack", stack, "--out", out]) for _ in range(args.runs)
            )
        print(f"{stack:8} {render:9.2f} {render / floor:7.2f} {render - floor:11.2f}")


if __name__ == "__main__":
    main()
