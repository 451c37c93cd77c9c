"""Make docs/ray-metrics.png from a real run: a real Ray cluster (head + one HPA-pool worker, the
local stack's pod settings) runs waves of tasks while a real Prometheus scrapes it through the
local stack's PodMonitors; Chromium (headless) photographs Prometheus's own graph view of two
queries from Ray's Grafana dashboards. Grafana itself is not packaged for this machine, so the
panels are shown where their queries run.

    tests/tools/install-prometheus && venv/bin/python docs/screenshot.py

It needs Debian's chromium and the JavaScript packages Prometheus's web UI links to
(apt-get install chromium libjs-bootstrap4 libjs-eonasdan-bootstrap-datetimepicker libjs-jquery
libjs-jquery-hotkeys libjs-moment libjs-moment-timezone libjs-mustache libjs-popper.js
libjs-rickshaw fonts-glyphicons-halflings); the tests need none of them.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.program import run_program, stack_file_config  # noqa: E402

OUT = ROOT / "docs" / "ray-metrics.png"
# Panels of Ray's default dashboard (their expressions, the dashboard's variables at "All").
PANELS = (
    'sum by (State) (ray_tasks{ray_io_cluster="raycluster"})',  # Scheduler Task State
    'ray_node_cpu_utilization{ray_io_cluster="raycluster"}',  # Node CPU (hardware utilization)
)
WAVES = (
    "@ray.remote\ndef spin(seconds):\n    end = time.time() + seconds\n    while time.time() < end:\n        pass\n    return seconds\n"
    "for wave in range(6):\n"
    "    refs = [spin.remote(2) for _ in range(4 + 2 * wave)]\n"
    "    data = ray.put(b'x' * (4_000_000 * (wave + 1)))\n"
    "    ray.get(refs)\n"
    "    del data\n"
    "    time.sleep(5)\n"
)


def main() -> int:
    from components.ray_cluster import ray_cluster_spec
    from components.ray_node import ray_resources, ray_start_args
    from tests.helpers.ray_ports import SANDBOX_HEAD_METRICS_PORT
    from tests.helpers.ray_sandbox import HEAD_GROUP, RaySandbox
    from tests.helpers.scraped_ray import ScrapedRay

    chromium = shutil.which("chromium")
    if not chromium:
        print("needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    from tests.helpers.prometheus import TOOLS

    # The UI's symlinks point at ../../../javascript (Debian's libjs packages, in /usr/share/javascript).
    share = TOOLS.parent / "share"
    if not (share / "javascript").exists():
        (share / "javascript").symlink_to("/usr/share/javascript")
    assets = f"--web.local-assets={share / 'prometheus' / 'web'}"
    run = run_program(stack_file_config("local"), "local")
    sandbox = RaySandbox()
    work = Path(tempfile.mkdtemp(prefix="rk-shot-"))
    try:
        spec = ray_cluster_spec({"ray_version": "x", "image": "x", "head": HEAD_GROUP, "worker_groups": []})
        sandbox.start_head([*ray_start_args(spec["headGroupSpec"]["rayStartParams"]), f"--metrics-export-port={SANDBOX_HEAD_METRICS_PORT}"],
                           memory=ray_resources(HEAD_GROUP["resources"])["memory"])
        cluster = ScrapedRay(sandbox, run, work, scrape_interval="2s", prometheus_args=(assets,))
        try:
            print("running waves of tasks for about a minute ...", flush=True)
            cluster.drive(WAVES, timeout=300)
            time.sleep(12)
            query = {"g{}.expr".format(i): expr for i, expr in enumerate(PANELS)}
            for i in range(len(PANELS)):
                query.update({f"g{i}.tab": "0", f"g{i}.range_input": "3m", f"g{i}.stacked": "0"})
            url = f"{cluster.url}/graph?{urllib.parse.urlencode(query)}"
            shot = work / "shot.png"
            done = sandbox.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                f"--user-data-dir={work / 'chromium'}", "--hide-scrollbars", "--window-size=1400,1500",
                                "--virtual-time-budget=20000", f"--screenshot={shot}", url],
                               env={"HOME": str(work)}, timeout=120)
            if not shot.exists():
                print(done.stdout, done.stderr, file=sys.stderr)
                return 1
            OUT.write_bytes(shot.read_bytes())
            print(f"wrote {OUT.relative_to(ROOT)}")
        finally:
            cluster.close()
    finally:
        sandbox.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
