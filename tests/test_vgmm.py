"""LaDDer's variational DP-GMM hyper prior: the TF distribution against scikit-learn's
`score_samples` and `predict_proba`, a normalised density (scipy reference and a grid integral),
samples that follow it, fits, pruning, save/load and argument checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from scipy.special import logsumexp
from sklearn.mixture import BayesianGaussianMixture

from tfpriors.distributions import VariationalGaussianMixture
from tfpriors.priors import VGMMHyperPrior


def three_clusters(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal([0.0, 0.0], 0.3, (n, 2)),
                           rng.normal([3.0, 1.0], [0.5, 0.2], (n, 2)),
                           rng.normal([-2.0, 2.0], 0.4, (n // 2, 2))])


@pytest.fixture(scope="module")
def fitted():
    mixture = BayesianGaussianMixture(n_components=8, covariance_type="full",
                                      weight_concentration_prior_type="dirichlet_process",
                                      max_iter=500, random_state=0).fit(three_clusters())
    dist = VariationalGaussianMixture(mixture.weight_concentration_, mixture.mean_precision_,
                                      mixture.means_, mixture.degrees_of_freedom_,
                                      mixture.covariances_)
    return mixture, dist


def test_score_samples_and_component_posterior_match_scikit_learn(fitted):
    mixture, dist = fitted
    t = np.random.default_rng(1).normal(0.0, 2.0, (200, 2))
    np.testing.assert_allclose(dist.score_samples(t.astype("float32")), mixture.score_samples(t),
                               atol=5e-5, rtol=1e-5)
    np.testing.assert_allclose(dist.component_posterior(t.astype("float32")),
                               mixture.predict_proba(t), atol=1e-5)


def test_log_prob_is_the_normalised_mixture_of_its_components(fitted):
    _, dist = fitted
    t = np.random.default_rng(2).normal(0.0, 2.0, (50, 2))
    weights = np.exp(dist.logits.numpy() - logsumexp(dist.logits.numpy()))
    loc = dist.components_distribution.loc.numpy()
    cov = dist.components_distribution.covariance().numpy()
    reference = logsumexp([np.log(w) + stats.multivariate_normal(m, c).logpdf(t)
                           for w, m, c in zip(weights, loc, cov)], axis=0)
    np.testing.assert_allclose(dist.log_prob(t.astype("float32")), reference, atol=1e-4)
    # A density: the integral over a grid that holds the mass is 1; score_samples lies below.
    axis = np.linspace(-5.0, 6.0, 441)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2).astype("float32")
    mass = np.exp(dist.log_prob(grid).numpy()).sum() * (axis[1] - axis[0]) ** 2
    assert abs(mass - 1.0) < 2e-3
    assert np.all(dist.score_samples(grid).numpy() < dist.log_prob(grid).numpy())


def test_samples_follow_the_density(fitted):
    _, dist = fitted
    samples = dist.sample(100000, seed=[3, 4]).numpy()
    edges = np.linspace(-3.0, 4.5, 16)
    counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=[edges, edges])
    centres = 0.5 * (edges[1:] + edges[:-1])
    # Probability of each bin by a fine midpoint rule inside it.
    fine = np.linspace(0, 1, 6)[:-1] + 0.1
    width = edges[1] - edges[0]
    probs = np.zeros_like(counts)
    for i, x in enumerate(edges[:-1]):
        for j, y in enumerate(edges[:-1]):
            pts = np.stack(np.meshgrid(x + fine * width, y + fine * width), -1).reshape(-1, 2)
            probs[i, j] = np.exp(dist.log_prob(pts.astype("float32")).numpy()).mean() * width ** 2
    assert centres.shape == (15,)
    np.testing.assert_allclose(counts / len(samples), probs, atol=0.004)


def test_the_layer_starts_as_a_unit_gaussian_and_fits_prune_and_warm_start():
    layer = VGMMHyperPrior(2, max_components=20)
    layer.build()
    t = three_clusters()
    probe = np.random.default_rng(5).normal(0.0, 2.0, (100, 2)).astype("float32")
    np.testing.assert_allclose(layer.distribution().log_prob(probe),
                               stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(probe),
                               atol=1e-5)
    assert layer.num_active == 1
    mixture = layer.fit(t, accurate=True, seed=0)
    assert 3 <= layer.num_active < 20 and layer.num_active == mixture.n_components
    np.testing.assert_allclose(layer.distribution().score_samples(probe),
                               mixture.score_samples(probe), atol=5e-5, rtol=1e-5)
    logits = layer.distribution().logits.numpy()
    assert np.all(np.isneginf(logits[layer.num_active:]))
    # A fast fit continues from the stored parameters: on the same data it barely moves them.
    before = layer.distribution().log_prob(t.astype("float32")).numpy().mean()
    fast = layer.fit(t, seed=1)
    after = layer.distribution().log_prob(t.astype("float32")).numpy().mean()
    assert fast.n_components == layer.num_active and abs(after - before) < 0.05
    assert int(layer.fits.numpy()) == 2


def test_the_fitted_parameters_are_saved_with_the_layer(tmp_path):
    layer = VGMMHyperPrior(2, max_components=6, fast_max_iter=5)
    layer.build()
    layer.fit(three_clusters(), accurate=True)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.hyper = layer
    path = tmp_path / "hyper.weights.h5"
    model.save_weights(path)
    fresh = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    fresh.hyper = VGMMHyperPrior(2, max_components=6, fast_max_iter=5)
    fresh.hyper.build()
    fresh.load_weights(path)
    probe = np.random.default_rng(0).normal(size=(10, 2)).astype("float32")
    np.testing.assert_array_equal(fresh.hyper.distribution().log_prob(probe),
                                  layer.distribution().log_prob(probe))
    clone = VGMMHyperPrior.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_gradients_in_t_are_finite_with_pruned_components():
    layer = VGMMHyperPrior(2, max_components=10)
    layer.build()
    layer.fit(three_clusters(), accurate=True)
    t = tf.constant(np.random.default_rng(1).normal(size=(20, 2)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(t)
        log_p = tf.reduce_sum(layer.distribution().log_prob(t))
    grad = tape.gradient(log_p, t).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_bad_arguments_and_encodings_are_clear_errors():
    with pytest.raises(ValueError, match="max_components"):
        VGMMHyperPrior(2, max_components=0)
    with pytest.raises(ValueError, match="prune_threshold"):
        VGMMHyperPrior(2, prune_threshold=1.0)
    with pytest.raises(ValueError, match="weight_concentration_prior"):
        VGMMHyperPrior(2, weight_concentration_prior=-1.0)
    layer = VGMMHyperPrior(2, max_components=4)
    layer.build()
    with pytest.raises(ValueError, match=r"shape \[N >= 2, 2\]"):
        layer.fit(np.zeros((10, 3)))
    bad = three_clusters()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="`t` to hold only finite values"):
        layer.fit(bad)
    assert layer.num_active == 1                       # nothing was written
    with pytest.raises(ValueError, match=r"\[2, M\]"):
        VariationalGaussianMixture(np.ones(4), np.ones(4), np.zeros((4, 2)), np.full(4, 2.0),
                                   np.broadcast_to(np.eye(2), (4, 2, 2)))
