"""evaluate_all: JSON-serialisable, and the same numbers as the individual functions."""

import json

import numpy as np
import pytest

from tests.helpers import binary_images, make_vae
from tests.test_evaluation_toy import exact_log_marginal, inexact_encoder, make_model, toy_images
from tfpriors.evaluation import (active_units, elbo, evaluate_all, kl_per_dimension, log_likelihood,
                                 prior_cross_entropy, reconstruction_error)

KEYS = {"num_examples", "log_likelihood", "elbo", "prior_cross_entropy", "reconstruction_error",
        "active_units", "kl_per_dimension", "seconds"}


def test_matches_the_individual_functions_on_the_toy_model():
    model = make_model(encoder=inexact_encoder())
    images = toy_images(4)
    result = evaluate_all(model, images, num_samples=400, chunk_size=100, seed=3)
    assert set(result) == KEYS and result["num_examples"] == 4
    json.loads(json.dumps(result))
    ll = log_likelihood(model, images, num_samples=400, chunk_size=100, seed=3)
    assert result["log_likelihood"]["mean"] == pytest.approx(ll.mean, abs=1e-6)
    assert result["log_likelihood"]["mean"] == pytest.approx(exact_log_marginal(images).mean(), abs=0.05)
    assert result["elbo"]["mean"] == pytest.approx(
        elbo(model, images, num_samples=400, seed=3).mean, abs=1e-6)
    assert result["prior_cross_entropy"]["mean"] == pytest.approx(
        prior_cross_entropy(model, images, num_samples=400, seed=3).mean, abs=1e-6)
    assert result["reconstruction_error"]["mean"] == pytest.approx(
        reconstruction_error(model, images).mean)
    assert result["active_units"]["count"] == active_units(model, images).count
    assert result["kl_per_dimension"]["total"] == pytest.approx(kl_per_dimension(model, images).total)
    assert result["elbo"]["mean"] < result["log_likelihood"]["mean"]


@pytest.mark.parametrize("prior_kind", ["vampprior", "mog"])
def test_runs_on_real_networks_and_lists_per_example_values(prior_kind):
    model = make_vae(prior_kind)
    images = binary_images(3)
    result = evaluate_all(model, images, num_samples=50, kl_num_samples=5, include_per_example=True)
    text = json.dumps(result)
    assert "NaN" not in text and "Infinity" not in text
    assert len(result["log_likelihood"]["per_example"]) == 3
    assert result["kl_per_dimension"]["reference"] == "prior_marginal_mixture"
    assert result["elbo"]["kl_estimate"] == "monte_carlo"
    ll = np.array(result["log_likelihood"]["per_example"])
    # same samples: log mean w >= mean log w (Jensen)
    assert np.all(ll >= np.array(result["elbo"]["per_example"]) - 1e-3)


def test_rejects_bad_images():
    model = make_model()
    bad = toy_images(3)
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="Expected `images` to hold only finite values"):
        evaluate_all(model, bad, num_samples=2)
    with pytest.raises(ValueError,
                       match="Expected `num_samples` to be a positive int. Received: num_samples=-10"):
        evaluate_all(model, toy_images(3), num_samples=-10)
