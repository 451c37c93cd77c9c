"""Seed 000's workload: a RandomForest on wine data, explained by KernelSHAP two ways.

The data is scikit-learn's wine data set (178 wines, 13 measured
characteristics, 3 cultivars), so it works offline; the cultivar (0, 1, 2) is
the score a RandomForestRegressor learns, as the seed learns wine quality.

With 13 features KernelSHAP can enumerate every one of the 2^13 coalitions,
and does when nsamples >= 2^13: its values are then exact, not sampled, so
the single-process `shap` run and the run split across Ray tasks must agree
to floating-point precision (TOLERANCE). Splitting the rows changes nothing
but who computes them.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np

FEATURE_COUNT = 13
EXACT_NSAMPLES = 2**FEATURE_COUNT
TOLERANCE = 1e-9
BACKGROUND_ROWS = 8
SEED = 0


def wine_csv() -> bytes:
    """scikit-learn's wine data set as CSV (header: the features, then `cultivar`)."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = data.frame.rename(columns={"target": "cultivar"})
    return frame.to_csv(index=False).encode()


def parse_csv(text: bytes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(text))
    features = [column for column in frame.columns if column != "cultivar"]
    return frame[features].to_numpy(dtype=float), frame["cultivar"].to_numpy(dtype=float), features


def train(features: np.ndarray, scores: np.ndarray):
    from sklearn.ensemble import RandomForestRegressor

    model = RandomForestRegressor(n_estimators=50, max_depth=6, random_state=SEED, n_jobs=1)
    return model.fit(features, scores)


def background(features: np.ndarray) -> np.ndarray:
    import shap

    return np.array(shap.sample(features, BACKGROUND_ROWS, random_state=SEED), copy=True)


def shap_values(model, background_rows: np.ndarray, rows: np.ndarray, nsamples: int = EXACT_NSAMPLES) -> np.ndarray:
    """KernelSHAP with the `shap` library. Copies its inputs: arrays from Ray's
    object store are read-only, and shap writes into them."""
    import shap

    explainer = shap.KernelExplainer(model.predict, np.array(background_rows, copy=True))
    return np.asarray(explainer.shap_values(np.array(rows, copy=True), nsamples=nsamples, silent=True))


def shap_values_on_ray(model, background_rows: np.ndarray, rows: np.ndarray, chunks: int, nsamples: int = EXACT_NSAMPLES) -> np.ndarray:
    """The same rows split into `chunks` Ray tasks, one CPU each; results in row order."""
    import ray

    explain = ray.remote(num_cpus=1)(shap_values)
    model_ref, background_ref = ray.put(model), ray.put(background_rows)
    parts = [part for part in np.array_split(rows, chunks) if len(part)]
    return np.vstack(ray.get([explain.remote(model_ref, background_ref, part, nsamples) for part in parts]))


@dataclass
class Comparison:
    single: np.ndarray
    parallel: np.ndarray
    single_seconds: float
    parallel_seconds: float

    @property
    def max_difference(self) -> float:
        return float(np.abs(self.single - self.parallel).max())

    @property
    def agree(self) -> bool:
        return self.max_difference <= TOLERANCE


def compare(model, background_rows: np.ndarray, rows: np.ndarray, chunks: int) -> Comparison:
    started = time.perf_counter()
    single = shap_values(model, background_rows, rows)
    single_seconds = time.perf_counter() - started
    started = time.perf_counter()
    parallel = shap_values_on_ray(model, background_rows, rows, chunks)
    return Comparison(single, parallel, single_seconds, time.perf_counter() - started)


def summary_plot_png(values: np.ndarray, rows: np.ndarray, features: list[str]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    plt.figure()
    shap.summary_plot(values, rows, feature_names=features, show=False)
    plt.title("KernelSHAP values per feature (RandomForest, wine cultivar)")
    return _png()


def comparison_plot_png(result: Comparison, chunks: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (values, times) = plt.subplots(1, 2, figsize=(11, 4.5))
    values.scatter(result.single.ravel(), result.parallel.ravel(), s=8)
    low, high = float(result.single.min()), float(result.single.max())
    values.plot([low, high], [low, high], color="grey", linewidth=1)
    values.set_xlabel("shap, one process")
    values.set_ylabel(f"shap on Ray, {chunks} tasks")
    values.set_title(f"same values: max difference {result.max_difference:.1e}")
    times.bar(["one process", f"Ray, {chunks} tasks"], [result.single_seconds, result.parallel_seconds], color=["#888", "#2a7"])
    times.set_ylabel("seconds")
    times.set_title(f"{len(result.single)} rows explained")
    figure.tight_layout()
    return _png()


def _png() -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    plt.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close("all")
    return buffer.getvalue()
