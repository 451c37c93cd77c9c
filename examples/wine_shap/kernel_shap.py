"""KernelSHAP written from the paper, independent of the `shap` library.

Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions" (NIPS 2017),
Theorem 2: the Shapley values of a prediction are the weighted least-squares fit
of a linear model over coalitions z ∈ {0,1}^M, each weighted by the Shapley kernel

    π(z) = (M - 1) / (C(M, |z|) · |z| · (M - |z|)),

where a coalition's value is the model's mean output over a background set with the
features outside z replaced by the background's (interventional expectation). The
empty and the full coalition have infinite weight: they become the constraints
φ0 = E[f(background)] and Σ φ = f(x) - φ0 (efficiency), which the fit meets exactly
by eliminating the last feature's φ.

The fit is a sum over coalitions, so its normal equations (XᵀWX, XᵀWy) add up over
any split of the coalitions: `coalition_sums` is the unit of work a Ray task takes,
for any batch of coalitions of any rows; `solve` finishes one row from the sums.

Exact: all 2^M - 2 coalitions with their kernel weights (M = 13 here: 8190).
Sampled: coalition sizes drawn in proportion to the kernel's total weight per size,
members uniform, each with its complement (paired sampling), equal weights.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np


def exact_coalitions(features: int) -> tuple[np.ndarray, np.ndarray]:
    """Every coalition but the empty and the full one, and its Shapley kernel weight."""
    masks = np.array([bits for bits in itertools.product((0, 1), repeat=features)][1:-1], dtype=float)
    sizes = masks.sum(1).astype(int)
    weights = np.array([(features - 1) / (math.comb(features, s) * s * (features - s)) for s in sizes])
    return masks, weights


def sampled_coalitions(features: int, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`samples` coalitions (in complementary pairs) drawn from the kernel; equal weights."""
    rng = np.random.default_rng(seed)
    sizes = np.arange(1, features)
    # The kernel's total weight of all coalitions of size s is (M - 1) / (s (M - s)).
    size_weight = (features - 1) / (sizes * (features - sizes))
    drawn = rng.choice(sizes, size=samples // 2, p=size_weight / size_weight.sum())
    masks = np.zeros((len(drawn) * 2, features))
    for index, size in enumerate(drawn):
        members = rng.choice(features, size=size, replace=False)
        masks[2 * index, members] = 1
        masks[2 * index + 1] = 1 - masks[2 * index]
    return masks, np.full(len(masks), 1.0 / len(masks))


def coalition_values(predict, row: np.ndarray, background: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """v(z) for each mask: the mean prediction over the background with z's features from `row`.
    One model call for all of them (masks × background rows)."""
    blended = np.where(masks[:, None, :] == 1, row[None, None, :], background[None, :, :])
    predictions = np.asarray(predict(blended.reshape(-1, row.shape[0])), dtype=float)
    return predictions.reshape(len(masks), len(background)).mean(1)


@dataclass
class RowFit:
    """What a row's fit needs besides the sums: its prediction and the base value."""

    prediction: float
    base: float


def row_fits(predict, rows: np.ndarray, background: np.ndarray) -> list[RowFit]:
    """Every row's prediction and the base value E[f(background)]: two model calls for all rows."""
    base = float(np.asarray(predict(background), dtype=float).mean())
    return [RowFit(float(prediction), base) for prediction in np.asarray(predict(rows), dtype=float)]


def coalition_sums(predict, row: np.ndarray, background: np.ndarray, masks: np.ndarray, weights: np.ndarray, fit: RowFit) -> tuple[np.ndarray, np.ndarray]:
    """(XᵀWX, XᵀWy) of this batch of coalitions, with the last φ eliminated by efficiency."""
    values = coalition_values(predict, row, background, masks)
    total = fit.prediction - fit.base
    design = masks[:, :-1] - masks[:, -1:]  # φ_M = total - Σ φ_j
    target = values - fit.base - masks[:, -1] * total
    weighted = design * weights[:, None]
    return weighted.T @ design, weighted.T @ target


def solve(sums: tuple[np.ndarray, np.ndarray], fit: RowFit) -> np.ndarray:
    """φ_1..φ_M from the summed normal equations; they add up to prediction - base exactly."""
    gram, moment = sums
    head = np.linalg.solve(gram, moment)
    return np.append(head, fit.prediction - fit.base - head.sum())


def shap_values(predict, background: np.ndarray, rows: np.ndarray, masks: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Shapley values of every row (rows × features), in one process."""
    return np.array([solve(coalition_sums(predict, row, background, masks, weights, fit), fit)
                     for row, fit in zip(rows, row_fits(predict, rows, background))])
