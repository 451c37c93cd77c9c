"""The example's second KernelSHAP implementation (examples/wine_shap/kernel_shap.py) against
the `shap` library and against the Shapley value's own definition."""
from __future__ import annotations

import itertools
import math
import sys

import numpy as np
import pytest

from tests.helpers.program import ROOT

sys.path.insert(0, str(ROOT / "examples" / "wine_shap"))
import kernel_shap  # noqa: E402
import wine_shap  # noqa: E402


@pytest.fixture(scope="module")
def wine():
    features, scores, _ = wine_shap.parse_csv(wine_shap.wine_csv())
    model = wine_shap.train(features, scores)
    return model, wine_shap.background(features), features[:8]


def shapley_by_definition(predict, row, background) -> np.ndarray:
    """φ_j = Σ_S |S|! (M-|S|-1)! / M! · (v(S ∪ {j}) - v(S)), over every coalition S without j."""
    features = len(row)
    masks = np.array(list(itertools.product((0, 1), repeat=features)), dtype=float)
    values = dict(zip(map(tuple, masks.astype(int)), kernel_shap.coalition_values(predict, row, background, masks)))
    phi = np.zeros(features)
    for mask, value in values.items():
        size = sum(mask)
        for j in range(features):
            if not mask[j]:
                weight = math.factorial(size) * math.factorial(features - size - 1) / math.factorial(features)
                phi[j] += weight * (values[mask[:j] + (1,) + mask[j + 1:]] - value)
    return phi


def test_exact_kernel_shap_is_the_shapley_value_by_definition(wine):
    model, background, rows = wine
    ours = wine_shap.kernel_shap_values(model, background, rows[:2])
    for row, values in zip(rows[:2], ours):
        assert np.abs(values - shapley_by_definition(model.predict, row, background)).max() <= wine_shap.TOLERANCE


def test_exact_kernel_shap_agrees_with_shaps_kernel_explainer(wine):
    model, background, rows = wine
    assert np.abs(wine_shap.kernel_shap_values(model, background, rows) - wine_shap.shap_values(model, background, rows)).max() <= wine_shap.TOLERANCE


def test_shaps_default_feature_selection_would_not_be_exact(wine):
    """Why wine_shap passes l1_reg=False: shap's default keeps 10 of the 13 features."""
    import shap

    model, background, rows = wine
    default = np.asarray(shap.KernelExplainer(model.predict, background).shap_values(rows, nsamples=wine_shap.EXACT_NSAMPLES, silent=True))
    assert np.abs(default - wine_shap.kernel_shap_values(model, background, rows)).max() > 1e-4
    assert ((default == 0).sum(axis=1) >= 3).all()


def test_efficiency_the_values_add_up_to_the_prediction(wine):
    model, background, rows = wine
    for nsamples in (wine_shap.EXACT_NSAMPLES, wine_shap.SAMPLES):
        values = wine_shap.kernel_shap_values(model, background, rows, nsamples)
        explained = model.predict(rows) - model.predict(background).mean()
        assert np.abs(values.sum(axis=1) - explained).max() <= 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampled_kernel_shap_of_both_implementations_is_within_the_stated_tolerance(wine, seed):
    import shap

    model, background, rows = wine
    exact = wine_shap.kernel_shap_values(model, background, rows)
    ours = wine_shap.kernel_shap_values(model, background, rows, wine_shap.SAMPLES, seed)
    np.random.seed(seed)  # shap samples with numpy's global generator
    theirs = np.asarray(shap.KernelExplainer(model.predict, background).shap_values(rows, nsamples=wine_shap.SAMPLES, silent=True, l1_reg=False))
    assert np.abs(ours - exact).max() <= wine_shap.SAMPLED_TOLERANCE
    assert np.abs(theirs - exact).max() <= wine_shap.SAMPLED_TOLERANCE
    assert np.abs(ours - exact).max() > 0  # sampled, not enumerated


def test_the_normal_equations_add_up_over_any_split_of_the_coalitions(wine):
    model, background, rows = wine
    masks, weights = kernel_shap.exact_coalitions(13)
    row = rows[0]
    (fit,) = kernel_shap.row_fits(model.predict, rows[:1], background)
    whole = kernel_shap.solve(kernel_shap.coalition_sums(model.predict, row, background, masks, weights, fit), fit)
    parts = [kernel_shap.coalition_sums(model.predict, row, background, masks[part], weights[part], fit)
             for part in np.array_split(np.random.default_rng(0).permutation(len(masks)), 5)]
    summed = (sum(part[0] for part in parts), sum(part[1] for part in parts))
    assert np.abs(kernel_shap.solve(summed, fit) - whole).max() <= 1e-12
