"""Seed 000's workload: a RandomForest on wine data, explained by two KernelSHAP implementations.

The data is scikit-learn's wine data set (178 wines, 13 measured
characteristics, 3 cultivars), so it works offline; the cultivar (0, 1, 2) is
the score a RandomForestRegressor learns, as the seed learns wine quality.

The two implementations: the `shap` library's KernelExplainer, and
kernel_shap.py, written from Lundberg & Lee's paper. With 13 features both can
enumerate every one of the 2^13 coalitions: their values are then exact
Shapley values, not estimates, and must agree to floating-point precision
(TOLERANCE) however the work is split over Ray: `shap` by rows, kernel_shap by
rows or by batches of coalitions (its least-squares fit adds up over them).
Sampled, they agree with the exact values within SAMPLED_TOLERANCE.
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
# Sampled KernelSHAP (2048 coalitions, in complementary pairs) against the exact
# values: the largest error over 8 rows x 13 features was 0.0005-0.0009 for
# 5 seeds of either implementation (the values reach 0.4); 5x that is allowed.
SAMPLES = 2048
SAMPLED_TOLERANCE = 0.005


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
    # l1_reg=False: by default (num_features(10)) shap keeps only 10 of the 13
    # features and zeroes the rest, so even its full enumeration is not exact.
    return np.asarray(explainer.shap_values(np.array(rows, copy=True), nsamples=nsamples, silent=True, l1_reg=False))


def shap_values_on_ray(model, background_rows: np.ndarray, rows: np.ndarray, chunks: int, nsamples: int = EXACT_NSAMPLES) -> np.ndarray:
    """The same rows split into `chunks` Ray tasks, one CPU each; results in row order."""
    import ray

    explain = ray.remote(num_cpus=1)(shap_values)
    model_ref, background_ref = ray.put(model), ray.put(background_rows)
    parts = [part for part in np.array_split(rows, chunks) if len(part)]
    return np.vstack(ray.get([explain.remote(model_ref, background_ref, part, nsamples) for part in parts]))


def kernel_shap_values(model, background_rows: np.ndarray, rows: np.ndarray, nsamples: int = EXACT_NSAMPLES, seed: int = SEED) -> np.ndarray:
    """The paper's KernelSHAP (kernel_shap.py) in this process: exact, or sampled below 2^M coalitions."""
    import kernel_shap

    masks, weights = _coalitions(nsamples, seed)
    return kernel_shap.shap_values(model.predict, background_rows, rows, masks, weights)


def _coalitions(nsamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import kernel_shap

    if nsamples >= EXACT_NSAMPLES:
        return kernel_shap.exact_coalitions(FEATURE_COUNT)
    return kernel_shap.sampled_coalitions(FEATURE_COUNT, nsamples, seed)


def _kernel_shap_batch(model, background_rows: np.ndarray, rows: np.ndarray, masks: np.ndarray, weights: np.ndarray) -> list:
    """One Ray task: for every row, the normal-equation sums of these coalitions, and the row's fit."""
    import kernel_shap

    fits = kernel_shap.row_fits(model.predict, rows, background_rows)
    return [(kernel_shap.coalition_sums(model.predict, row, background_rows, masks, weights, fit), fit) for row, fit in zip(rows, fits)]


def kernel_shap_on_ray(model, background_rows: np.ndarray, rows: np.ndarray, chunks: int, split: str = "coalitions",
                       nsamples: int = EXACT_NSAMPLES, seed: int = SEED) -> np.ndarray:
    """The paper's KernelSHAP over `chunks` Ray tasks, one CPU each: split by rows, or by
    batches of coalitions whose normal-equation sums the driver adds up and solves."""
    import ray

    import kernel_shap

    model_ref, background_ref = ray.put(model), ray.put(background_rows)
    if split == "rows":  # each task makes the same coalitions itself (same seed)
        explain = ray.remote(num_cpus=1)(kernel_shap_values)
        parts = [part for part in np.array_split(rows, chunks) if len(part)]
        return np.vstack(ray.get([explain.remote(model_ref, background_ref, part, nsamples, seed) for part in parts]))
    masks, weights = _coalitions(nsamples, seed)
    batch = ray.remote(num_cpus=1)(_kernel_shap_batch)
    rows_ref = ray.put(rows)
    order = np.arange(len(masks))
    results = ray.get([batch.remote(model_ref, background_ref, rows_ref, masks[part], weights[part])
                       for part in np.array_split(order, chunks) if len(part)])
    values = []
    for index in range(len(rows)):
        gram = sum(result[index][0][0] for result in results)
        moment = sum(result[index][0][1] for result in results)
        values.append(kernel_shap.solve((gram, moment), results[0][index][1]))
    return np.array(values)


@dataclass
class Comparison:
    """Both implementations, in one process and on Ray: values and seconds."""

    single: np.ndarray  # shap, one process: the reference
    parallel: np.ndarray  # shap on Ray, by rows
    own_single: np.ndarray  # kernel_shap, one process
    own_parallel: np.ndarray  # kernel_shap on Ray, by coalition batches
    seconds: dict

    @property
    def single_seconds(self) -> float:
        return self.seconds["shap, one process"]

    @property
    def parallel_seconds(self) -> float:
        return self.seconds["shap on Ray (rows)"]

    @property
    def max_difference(self) -> float:
        """The largest difference of any result from the reference."""
        return float(max(np.abs(other - self.single).max() for other in (self.parallel, self.own_single, self.own_parallel)))

    @property
    def agree(self) -> bool:
        return self.max_difference <= TOLERANCE


def compare(model, background_rows: np.ndarray, rows: np.ndarray, chunks: int) -> Comparison:
    runs = {
        "shap, one process": lambda: shap_values(model, background_rows, rows),
        "shap on Ray (rows)": lambda: shap_values_on_ray(model, background_rows, rows, chunks),
        "kernel_shap, one process": lambda: kernel_shap_values(model, background_rows, rows),
        "kernel_shap on Ray (coalitions)": lambda: kernel_shap_on_ray(model, background_rows, rows, chunks),
    }
    values, seconds = {}, {}
    for name, run in runs.items():
        started = time.perf_counter()
        values[name] = run()
        seconds[name] = time.perf_counter() - started
    return Comparison(*values.values(), seconds=seconds)


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

    figure, (values, times) = plt.subplots(1, 2, figsize=(12, 4.8))
    for other, label, marker in ((result.parallel, f"shap on Ray, {chunks} tasks by rows", "o"),
                                 (result.own_single, "kernel_shap, one process", "x"),
                                 (result.own_parallel, f"kernel_shap on Ray, {chunks} coalition batches", "+")):
        values.scatter(result.single.ravel(), other.ravel(), s=14, marker=marker, label=label)
    low, high = float(result.single.min()), float(result.single.max())
    values.plot([low, high], [low, high], color="grey", linewidth=1)
    values.set_xlabel("shap, one process (SHAP value)")
    values.set_ylabel("the other runs (SHAP value)")
    values.legend(fontsize=8)
    values.set_title(f"two implementations, same values: max difference {result.max_difference:.1e}")
    names = list(result.seconds)
    times.barh(names, [result.seconds[name] for name in names], color=["#888", "#2a7", "#aaa", "#27a"])
    times.invert_yaxis()
    times.set_xlabel("seconds")
    times.set_title(f"{len(result.single)} rows explained, exact ({EXACT_NSAMPLES} coalitions)")
    figure.tight_layout()
    return _png()


def _png() -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    plt.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close("all")
    return buffer.getvalue()
