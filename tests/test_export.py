"""Tests of tfpriors.export: every signature, stateless sampling across processes, log-likelihood.

The four shared exports (vamp, mog, vhp, toy) and the two subprocesses (a fresh TF-only process and
`saved_model_cli`) are described in tests/export_support.py. Malformed requests, caps and the
TF-Serving layout: test_export_requests.py.
"""

import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tests.export_support import (ALL, CHUNK, COMPONENT, FRESH, LATENT, LL_SAMPLES, LL_SEED,
                                  MIXTURES, NUM, SEED_A, SEED_B, SHAPE, TOY_LL_SAMPLES)
from tests.test_evaluation_toy import exact_log_marginal
from tfpriors.evaluation import log_likelihood
from tfpriors.export import MIXTURE_SIGNATURES, SIGNATURES
from tfpriors.priors import gaussian_mixture

tfd = tfp.distributions


# ---------------------------------------------------------------------- signatures and processes
def test_saved_model_cli_lists_every_signature(exported):
    show = exported["show"]
    for name in SIGNATURES + ("serving_default",):
        assert f"signature_def['{name}']" in show
    for key in ("num_samples", "seed", "component", "images", "z"):
        assert f"inputs['{key}']" in show
    assert "outputs['log_likelihood']" in show
    # Image and latent inputs accept any shape; the graph checks it (see the invalid-input tests).
    assert "shape: (-1, -1, -1, -1)" in show and "shape: (-1, -1)" in show


def _expected_signatures(name):
    expected = set(SIGNATURES + ("serving_default",))
    if name not in MIXTURES:
        expected -= set(MIXTURE_SIGNATURES)   # VHP and the standard normal are no mixtures
    return expected


def test_sample_component_only_for_mixture_priors(loaded):
    for name in ALL:
        assert set(loaded[name].signatures.keys()) == _expected_signatures(name), name
    assert not hasattr(loaded["vhp"], "sample_component")


def test_fresh_process_calls_every_signature(exported):
    fresh = exported["fresh"]
    assert fresh["foreign_modules"].size == 0   # loaded without tfpriors/trainers
    for name in FRESH:
        assert set(fresh[f"{name}/keys"]) == _expected_signatures(name), name
        assert fresh[f"{name}/sample_a/images"].shape == (NUM,) + SHAPE
        assert fresh[f"{name}/sample_a/z"].shape == (NUM, LATENT)
        assert fresh[f"{name}/encode/loc"].shape == (len(exported["x"][name]), LATENT)
        assert fresh[f"{name}/decode/images"].shape == (5,) + SHAPE
        assert fresh[f"{name}/log_likelihood/log_likelihood"].shape == (len(exported["x"][name]),)
        assert np.all(np.isfinite(fresh[f"{name}/log_likelihood/log_likelihood"]))
        # serving_default is the sample signature.
        for key in ("z", "images"):
            np.testing.assert_array_equal(fresh[f"{name}/default/{key}"],
                                          fresh[f"{name}/sample_a/{key}"])
    for name in MIXTURES:
        assert fresh[f"{name}/sample_component/z"].shape == (NUM, LATENT)
        images = fresh[f"{name}/sample_a/images"]
        assert np.all((images >= 0) & (images <= 1))   # Bernoulli means


def test_saved_model_cli_runs_every_signature_bitwise_equal_to_fresh_process(exported):
    # Process 1: tf.saved_model.load (eager); process 2: saved_model_cli's session loader.
    fresh, cli = exported["fresh"], exported["cli"]
    outputs = {"sample": ("images", "z"), "encode": ("loc", "scale"), "decode": ("images",),
               "log_likelihood": ("log_likelihood",), "sample_component": ("images", "z")}
    assert set(outputs) == set(SIGNATURES)
    for signature, keys in outputs.items():
        fresh_key = "sample_a" if signature == "sample" else signature
        for key in keys:
            np.testing.assert_array_equal(cli[f"{signature}/{key}"], fresh[f"vamp/{fresh_key}/{key}"],
                                          err_msg=f"{signature}/{key}")


def test_saved_model_cli_reports_invalid_argument(exported):
    errors = exported["cli_errors"]
    expected = {"bad_num_samples": r"Expected `num_samples` in \[0, 10000\].*Received: num_samples=-1",
                "bad_images": r"Expected `images` of shape \[batch, 8, 8, 1\]\. "
                              r"Received: shape \[2 7 8 1\]"}
    for key, pattern in expected.items():
        assert errors[key] is not None, f"{key}: saved_model_cli run did not fail"
        kind, message = errors[key]
        assert kind == "InvalidArgumentError", (key, kind, message[:500])
        assert re.search(pattern, message), (key, message[:500])


# ---------------------------------------------------------------------- sample, encode, decode
@pytest.mark.parametrize("name", ["vamp", "mog", "vhp"])
def test_sample_matches_in_process_model(exported, name):
    model, fresh = exported["models"][name], exported["fresh"]
    for tag, seed in (("a", SEED_A), ("b", SEED_B)):
        images, z = model.sample(NUM, tf.constant(seed, tf.int32))
        np.testing.assert_allclose(fresh[f"{name}/sample_{tag}/z"], z.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fresh[f"{name}/sample_{tag}/images"], images.numpy(),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", FRESH)
def test_different_seeds_differ(exported, name):
    fresh = exported["fresh"]
    z_a, z_b = fresh[f"{name}/sample_a/z"], fresh[f"{name}/sample_b/z"]
    assert np.all(np.abs(z_a - z_b).max(axis=-1) > 1e-3)


@pytest.mark.parametrize("name", FRESH)
def test_encode_decode_match_model(exported, name):
    model, fresh, x, z = exported["models"][name], exported["fresh"], exported["x"][name], exported["z"]
    np.testing.assert_allclose(fresh[f"{name}/encode/loc"], model.encode(x).numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fresh[f"{name}/encode/scale"], model.posterior(x).stddev().numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fresh[f"{name}/decode/images"], model.decode(z).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_vampprior_components_come_from_pseudo_inputs(exported):
    # The exported p(z) must be the encoder at the saved pseudo-inputs: its samples equal
    # TFP's stateless draw from the mixture built here from model.prior.pseudo_inputs().
    model = exported["models"]["vamp"]
    loc, log_var = model.encoder(model.prior.pseudo_inputs())   # [K, D]
    assert np.ptp(loc.numpy(), axis=0).min() > 1e-3              # components are distinct
    reference = gaussian_mixture(model.prior.logits.value, loc, tf.exp(0.5 * log_var))
    z = reference.sample(NUM, seed=tf.constant(SEED_A, tf.int32))
    np.testing.assert_allclose(exported["fresh"]["vamp/sample_a/z"], z.numpy(), rtol=1e-5, atol=1e-6)


def _mog_components(prior):
    """(weights [K], loc [K, D], scale [K, D]) of the MoG prior."""
    scale = (prior.min_scale + tf.nn.softplus(prior.raw_scale.value)).numpy()
    return tf.nn.softmax(prior.logits.value).numpy(), prior.loc.numpy(), scale


def test_mog_samples_have_the_mixture_moments(exported, loaded):
    # Closed form: E[z] = sum_k w_k mu_k, Var[z] = sum_k w_k (sigma_k^2 + mu_k^2) - E[z]^2.
    w, mu, scale = _mog_components(exported["models"]["mog"].prior)
    mean = (w[:, None] * mu).sum(0)
    variance = (w[:, None] * (scale ** 2 + mu ** 2)).sum(0) - mean ** 2
    z = loaded["mog"].sample(tf.constant(5000), tf.constant([1, 2], tf.int32))["z"].numpy()
    assert np.all(np.abs(z.mean(0) - mean) < 4 * np.sqrt(variance / 5000)), (z.mean(0), mean)
    np.testing.assert_allclose(z.var(0), variance, rtol=0.1)
    assert np.all(variance > 1.5)   # far from N(0, I): the test would catch a wrong prior


# ---------------------------------------------------------------------- sample_component
@pytest.mark.parametrize("component", [0, 1, 2])
def test_sample_component_draws_only_from_that_component(exported, loaded, component):
    w, mu, scale = _mog_components(exported["models"]["mog"].prior)
    n = 2000
    out = loaded["mog"].sample_component(tf.constant(component), tf.constant(n),
                                         tf.constant([3, component], tf.int32))
    z = out["z"].numpy()
    # Every draw is most probable under the chosen component's own density (the components
    # are >= 8 standard deviations apart, so a draw from another component would not be).
    log_p = tfd.MultivariateNormalDiag(mu, scale).log_prob(z[:, None, :]).numpy()   # [n, K]
    assert np.all(log_p.argmax(axis=1) == component)
    # ... with that component's mean and standard deviation.
    assert np.all(np.abs(z.mean(0) - mu[component]) < 4 * scale[component] / np.sqrt(n))
    np.testing.assert_allclose(z.std(0), scale[component], rtol=0.08)
    np.testing.assert_allclose(out["images"].numpy(),
                               exported["models"]["mog"].decode(z).numpy(), rtol=1e-5, atol=1e-6)


def test_sample_component_of_vampprior_is_the_posterior_at_that_pseudo_input(exported):
    # p_k(z) = q(z | u_k): the stateless draw from N(mu(u_k), sigma(u_k)^2) built here.
    model = exported["models"]["vamp"]
    loc, log_var = model.encoder(model.prior.pseudo_inputs())   # [K, D]
    component = tfd.MultivariateNormalDiag(loc[COMPONENT], tf.exp(0.5 * log_var[COMPONENT]))
    z = component.sample(NUM, seed=tf.constant(SEED_A, tf.int32)).numpy()
    np.testing.assert_allclose(exported["fresh"]["vamp/sample_component/z"], z, rtol=1e-5, atol=1e-6)
    assert not np.allclose(exported["fresh"]["vamp/sample_a/z"], z, atol=1e-3)


# ---------------------------------------------------------------------- log_likelihood
@pytest.mark.parametrize("name", ALL)
def test_log_likelihood_equals_tfpriors_evaluation(exported, loaded, name):
    # Same noise addressing: seed [s, 0] reproduces evaluation's log_likelihood(seed=s) up to
    # float rounding (for VHP, whose log p(z) is a per-chunk seeded bound, with the same chunks).
    x = exported["x"][name]
    if name in FRESH:
        num_samples, got = LL_SAMPLES, exported["fresh"][f"{name}/log_likelihood/log_likelihood"]
    else:   # evaluation uses other chunks (7 samples each) than the export (16): same result
        num_samples = TOY_LL_SAMPLES
        got = loaded[name].log_likelihood(tf.constant(x), tf.constant(num_samples),
                                          tf.constant([LL_SEED, 0], tf.int32))["log_likelihood"]
    chunk_size = CHUNK if name == "vhp" else 7
    reference = log_likelihood(exported["models"][name], x, num_samples=num_samples,
                               chunk_size=chunk_size, batch_size=len(x), seed=LL_SEED)
    np.testing.assert_allclose(got, reference.per_example, rtol=1e-5, atol=1e-4)


def test_log_likelihood_matches_closed_form(exported, loaded):
    # Linear-Gaussian VAE: p(x) = N(b, W W^T + s^2 I) exactly; the inexact proposal needs many
    # samples (a missing log S or normalising constant would be off by more than a nat).
    x = exported["x"]["toy"]
    got = loaded["toy"].log_likelihood(tf.constant(x), tf.constant(4000),
                                       tf.constant([1, 2], tf.int32))["log_likelihood"].numpy()
    np.testing.assert_allclose(got, exact_log_marginal(x), atol=0.05)


def test_log_likelihood_is_a_function_of_the_seed(exported, loaded):
    x = tf.constant(exported["x"]["vhp"])
    ll = loaded["vhp"].log_likelihood
    first = ll(x, tf.constant(20), tf.constant([4, 4], tf.int32))["log_likelihood"].numpy()
    again = ll(x, tf.constant(20), tf.constant([4, 4], tf.int32))["log_likelihood"].numpy()
    other = ll(x, tf.constant(20), tf.constant([4, 5], tf.int32))["log_likelihood"].numpy()
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).min() > 1e-5


def test_log_likelihood_of_an_image_does_not_depend_on_later_images(exported, loaded):
    # The noise of sample s of row n depends on (seed, n, s) only: a prefix of the batch gets
    # the same estimates (closed-form log p(z)); a seed-sensitive estimate would differ.
    x = tf.constant(exported["x"]["mog"])
    ll = loaded["mog"].log_likelihood
    seed = tf.constant([4, 4], tf.int32)
    full = ll(x, tf.constant(40), seed)["log_likelihood"].numpy()
    prefix = ll(x[:2], tf.constant(40), seed)["log_likelihood"].numpy()
    np.testing.assert_allclose(prefix, full[:2], rtol=1e-6, atol=1e-5)
