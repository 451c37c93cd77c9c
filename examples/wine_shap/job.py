"""The Ray job: read the wine data from S3, train, explain with two KernelSHAP implementations, compare, plot.

    python job.py --bucket B [--key wine/wine.csv] [--rows 64] [--chunks 4]

Reads with plain boto3: on a raykube cluster the credentials come from the
mounted credentials file (secret mode) or the service account (IRSA). Writes
the SHAP summary plot, the comparison plot (both implementations' values and
times) and the figures as JSON next to the data, and prints where they are.
Exits 1 if the implementations disagree.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import wine_shap


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", default="wine/wine.csv")
    parser.add_argument("--rows", type=int, default=64, help="rows to explain")
    parser.add_argument("--chunks", type=int, default=4, help="Ray tasks to split them into")
    args = parser.parse_args(argv)

    import boto3
    import ray

    ray.init(logging_level="ERROR")
    s3 = boto3.client("s3")
    features, scores, names = wine_shap.parse_csv(s3.get_object(Bucket=args.bucket, Key=args.key)["Body"].read())
    print(f"read {len(features)} wines, {len(names)} features from s3://{args.bucket}/{args.key}", flush=True)
    model = wine_shap.train(features, scores)
    rows = features[: args.rows]
    result = wine_shap.compare(model, wine_shap.background(features), rows, args.chunks)
    for name, seconds in result.seconds.items():
        print(f"{name}: {seconds:.2f} s", flush=True)
    print(f"largest difference {result.max_difference:.2e} (tolerance {wine_shap.TOLERANCE:.0e})", flush=True)

    prefix = f"{args.key.rsplit('/', 1)[0]}/results/{time.strftime('%Y%m%dT%H%M%S')}"
    outputs = {
        "shap_summary.png": (wine_shap.summary_plot_png(result.single, rows, names), "image/png"),
        "comparison.png": (wine_shap.comparison_plot_png(result, args.chunks), "image/png"),
        "results.json": (json.dumps({
            "rows": len(rows), "chunks": args.chunks, "single_seconds": result.single_seconds,
            "ray_seconds": result.parallel_seconds, "seconds": result.seconds, "max_difference": result.max_difference,
            "tolerance": wine_shap.TOLERANCE, "ray_shap_values": result.parallel.tolist(), "kernel_shap_values": result.own_parallel.tolist(), "mean_abs_shap": dict(zip(names, np.abs(result.single).mean(0).round(6).tolist())),
        }, indent=2).encode(), "application/json"),
    }
    for name, (body, content_type) in outputs.items():
        s3.put_object(Bucket=args.bucket, Key=f"{prefix}/{name}", Body=body, ContentType=content_type)
        print(f"wrote s3://{args.bucket}/{prefix}/{name}", flush=True)
    if not result.agree:
        print(f"ERROR: the implementations disagree by {result.max_difference:.2e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
