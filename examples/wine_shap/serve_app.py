"""The wine model as an HTTP endpoint: the Ray Serve application `serve_app:app`.

A RayService (or `serve run serve_app:app` in this folder) runs one deployment,
`WineModel`. Each replica, as it starts, reads the wine data the job reads
(s3://$WINE_BUCKET/$WINE_KEY, WINE_KEY defaulting to the job's wine/wine.csv)
and trains the job's model with the job's own functions (wine_shap.parse_csv,
train, background): the forest is seeded and single-threaded, so every replica
holds the model the job explains, and no model file has to be kept in step
with the data or the scikit-learn version. Training takes under a second.
S3 credentials come as for the job, from the pod (raykube's credentials file
or IRSA): nothing here names a credential. The bucket is named by the
application's runtime env, as the job's entrypoint names it with --bucket:

    runtimeEnv: {env_vars: {WINE_BUCKET: my-ray-input-data}}

POST <route prefix> (the stack's routePrefix, e.g. /wine) with one wine's 13
measurements, by name or in the data's column order:

    {"features": {"alcohol": 14.23, "malic_acid": 1.71, ...}}
    {"features": [14.23, 1.71, 2.43, 15.6, 127.0, 2.8, 3.06, 0.28, 2.29, 5.64, 1.04, 3.92, 1065.0]}

answers the forest's prediction (the cultivar score, 0-2) and its exact
KernelSHAP explanation, the job's values (wine_shap.shap_values: all 2^13
coalitions, the job's 8 background rows):

    {"prediction": 0.0, "base_value": 0.85,
     "shap_values": {"alcohol": -0.075, ..., "flavanoids": -0.245, ..., "proline": -0.366}}

base_value + the sum of shap_values = prediction (KernelSHAP's efficiency).
A malformed request gets 400 and {"error": "..."} naming what is wrong; GET
answers the feature names. From a pod allowed to reach the Serve port:

    curl -s http://wine-serve-svc.ray.svc:8000/wine -H 'Content-Type: application/json' \
      -d '{"features": [14.23, 1.71, 2.43, 15.6, 127, 2.8, 3.06, 0.28, 2.29, 5.64, 1.04, 3.92, 1065]}'
"""
from __future__ import annotations

import json
import os

import numpy as np
from ray import serve

import kernel_shap
import wine_shap

DEFAULT_KEY = "wine/wine.csv"


def load(bucket: str, key: str = DEFAULT_KEY, s3=None):
    """The job's model, its background rows and the feature names, from the data at s3://bucket/key."""
    import boto3

    s3 = s3 or boto3.client("s3")
    features, scores, names = wine_shap.parse_csv(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return wine_shap.train(features, scores), wine_shap.background(features), names


def row_of(body, names: list[str]) -> np.ndarray:
    """One wine's measurements in column order; ValueError saying what is wrong with the request."""
    if not isinstance(body, dict) or "features" not in body:
        raise ValueError('the request must be a JSON object {"features": {name: value, ...}} or {"features": [value, ...]}')
    given = body["features"]
    if isinstance(given, dict):
        missing, unknown = [n for n in names if n not in given], sorted(set(given) - set(names))
        if missing or unknown:
            raise ValueError(f"features: missing {missing}, unknown {unknown}; expected exactly {names}")
        values = [given[name] for name in names]
    elif isinstance(given, list):
        if len(given) != len(names):
            raise ValueError(f"features: {len(given)} values given, {len(names)} expected, in this order: {names}")
        values = given
    else:
        raise ValueError("features must be an object (name: value) or a list of values")
    if not all(isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value) for value in values):
        raise ValueError("features: every value must be a finite number")
    return np.array(values, dtype=float)


def explain(model, background_rows: np.ndarray, names: list[str], row: np.ndarray) -> dict:
    """The prediction, the base value E[f(background)] and the exact KernelSHAP values of one wine."""
    rows = row[None, :]
    (fit,) = kernel_shap.row_fits(model.predict, rows, background_rows)
    (values,) = wine_shap.shap_values(model, background_rows, rows)
    return {"prediction": fit.prediction, "base_value": fit.base, "shap_values": dict(zip(names, values.tolist()))}


# One CPU: explaining is single-threaded numpy work; a Serve config's
# deployments[] (the stack's rayServices[].serveConfig) overrides these.
@serve.deployment(ray_actor_options={"num_cpus": 1}, max_ongoing_requests=4)
class WineModel:
    def __init__(self) -> None:
        bucket = os.environ.get("WINE_BUCKET")
        if not bucket:
            raise RuntimeError("WINE_BUCKET is not set: give the application's runtime_env env_vars "
                               "WINE_BUCKET (the bucket the job reads, e.g. awsAccess.bucket) and optionally WINE_KEY")
        self.source = f"s3://{bucket}/{os.environ.get('WINE_KEY') or DEFAULT_KEY}"
        self.model, self.background, self.names = load(bucket, os.environ.get("WINE_KEY") or DEFAULT_KEY)

    async def __call__(self, request):
        from starlette.responses import JSONResponse

        if request.method == "GET":
            return {"features": self.names, "trained_on": self.source}
        try:
            body = json.loads(await request.body())
        except ValueError as error:
            return JSONResponse({"error": f"the request body is not JSON: {error}"}, status_code=400)
        try:
            row = row_of(body, self.names)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return explain(self.model, self.background, self.names, row)


app = WineModel.bind()
