"""Prior densities against brute-force numpy, sampling against the density, and bad arguments."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from scipy.special import logsumexp, softmax

from tests.helpers import LATENT, SHAPE, binary_images, make_vae
from tfpriors.networks import MLPEncoder
from tfpriors.priors import MixtureOfGaussiansPrior, StandardNormalPrior, VampPrior


def numpy_mog_log_prob(z, logits, loc, scale):
    """log sum_k w_k prod_d N(z_d; loc_kd, scale_kd), brute force."""
    log_w = np.log(softmax(logits))
    comp = np.stack([stats.norm(loc[k], scale[k]).logpdf(z).sum(-1) for k in range(len(logits))], -1)
    return logsumexp(comp + log_w, axis=-1)


def test_standard_normal_log_prob_matches_scipy():
    prior = StandardNormalPrior(3)
    prior.build()
    z = np.random.default_rng(0).normal(size=(7, 3)).astype("float32")
    expected = stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z)
    np.testing.assert_allclose(prior.distribution().log_prob(z), expected, rtol=1e-5)


def test_mog_log_prob_matches_numpy():
    prior = MixtureOfGaussiansPrior(2, num_components=3, learn_weights=True)
    prior.build()
    rng = np.random.default_rng(1)
    prior.logits.assign(rng.normal(size=3).astype("float32"))
    z = rng.normal(size=(11, 2)).astype("float32")
    scale = 1e-3 + np.log1p(np.exp(prior.raw_scale.numpy()))
    expected = numpy_mog_log_prob(z, prior.logits.numpy(), prior.loc.numpy(), scale)
    np.testing.assert_allclose(prior.distribution().log_prob(z), expected, rtol=1e-5, atol=1e-5)


def _random_full_mog(d=3, k=4, seed=1):
    prior = MixtureOfGaussiansPrior(d, num_components=k, learn_weights=True, covariance="full")
    prior.build()
    rng = np.random.default_rng(seed)
    prior.logits.assign(rng.normal(size=k).astype("float32"))
    prior.loc.assign(rng.normal(size=(k, d)).astype("float32"))
    prior.raw_scale_tril.assign(rng.normal(size=(k, d * (d + 1) // 2)).astype("float32"))
    return prior


def test_full_covariance_mog_log_prob_matches_scipy():
    """covariance="full": L_k lower triangular with diagonal min_scale + softplus(raw), and the
    density sum_k w_k N(z; mu_k, L_k L_k^T) by scipy."""
    prior = _random_full_mog()
    tril = prior.scale_tril().numpy()                                       # [4, 3, 3]
    assert np.all(np.triu(tril, 1) == 0.0) and np.all(np.diagonal(tril, axis1=1, axis2=2) > 1e-3)
    assert np.any(np.abs(np.tril(tril, -1)) > 0.1)                          # not diagonal
    weights = softmax(prior.logits.numpy())
    z = np.random.default_rng(2).normal(size=(9, 3)).astype("float32")
    expected = np.log(sum(w * stats.multivariate_normal(m, l @ l.T).pdf(z)
                          for w, m, l in zip(weights, prior.loc.numpy(), tril)))
    np.testing.assert_allclose(prior.distribution().log_prob(z), expected, rtol=1e-4, atol=1e-4)


def test_full_covariance_mog_samples_follow_the_density():
    prior = _random_full_mog(d=2, k=2)
    prior.loc.assign([[-6.0, 0.0], [6.0, 1.0]])
    prior.logits.assign(np.log([0.3, 0.7]).astype("float32"))
    z = prior.distribution().sample(60000, seed=[5, 6]).numpy()
    tril = prior.scale_tril().numpy()
    for k, side in enumerate([z[:, 0] < 0, z[:, 0] > 0]):
        np.testing.assert_allclose(side.mean(), [0.3, 0.7][k], atol=0.01)
        np.testing.assert_allclose(np.cov(z[side].T), tril[k] @ tril[k].T, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("covariance", ["diagonal", "full"])
def test_mog_takes_given_components(covariance):
    """assign_components(mu, Sigma, w): a full prior takes Sigma whole, a diagonal one its diagonal."""
    prior = MixtureOfGaussiansPrior(2, num_components=2, learn_weights=True, covariance=covariance)
    prior.build()
    sigma = np.array([[[1.0, 0.6], [0.6, 2.0]], [[0.5, -0.2], [-0.2, 0.3]]])
    prior.assign_components([[1.0, 2.0], [-1.0, 0.0]], sigma, [0.25, 0.75])
    components = prior.distribution().components_distribution
    expected = sigma if covariance == "full" else sigma * np.eye(2)
    np.testing.assert_allclose(components.covariance(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(components.mean(), [[1.0, 2.0], [-1.0, 0.0]])
    np.testing.assert_allclose(softmax(prior.logits.numpy()), [0.25, 0.75], rtol=1e-6)
    with pytest.raises(ValueError, match=r"Expected loc \[2, 2\] and covariance \[2, 2, 2\]"):
        prior.assign_components(np.zeros((3, 2)), sigma)


def test_full_mog_rejects_a_covariance_that_is_not_positive_definite_and_survives_saving():
    prior = _random_full_mog(d=2, k=2)
    with pytest.raises(ValueError, match="positive-definite"):
        prior.assign_components(np.zeros((2, 2)), np.array([[[1.0, 2.0], [2.0, 1.0]]] * 2))
    clone = MixtureOfGaussiansPrior.from_config(prior.get_config())
    clone.build()
    clone.set_weights(prior.get_weights())
    z = np.random.default_rng(3).normal(size=(5, 2)).astype("float32")
    assert clone.covariance == "full"
    np.testing.assert_allclose(clone.distribution().log_prob(z), prior.distribution().log_prob(z))


def test_vampprior_log_prob_is_mixture_of_posteriors_at_pseudo_inputs():
    model = make_vae("vampprior")
    rng = np.random.default_rng(2)
    model.prior.logits.assign(rng.normal(size=5).astype("float32"))
    u = np.clip(model.prior.raw_pseudo_inputs.numpy(), 0, 1)
    loc, log_var = (t.numpy() for t in model.encoder(u))
    z = rng.normal(size=(9, LATENT)).astype("float32")
    expected = numpy_mog_log_prob(z, model.prior.logits.numpy(), loc, np.exp(0.5 * log_var))
    np.testing.assert_allclose(model.prior_distribution().log_prob(z), expected, rtol=1e-4, atol=1e-4)


def test_vampprior_uniform_weights_by_default():
    prior = VampPrior(2, num_pseudo_inputs=4, input_shape_=SHAPE)
    prior.build()
    assert not prior.logits.trainable
    np.testing.assert_allclose(softmax(prior.logits.numpy()), 0.25)


def test_mog_samples_follow_the_density():
    """Components chosen in proportion to their weights, then z from the component."""
    prior = MixtureOfGaussiansPrior(1, num_components=2, learn_weights=True)
    prior.build()
    prior.loc.assign([[-3.0], [4.0]])
    prior.raw_scale.assign(np.log(np.expm1(np.array([[0.5], [1.0]]) - 1e-3)).astype("float32"))
    prior.logits.assign(np.log([0.2, 0.8]).astype("float32"))
    z = prior.distribution().sample(40000, seed=[1, 2]).numpy()[:, 0]
    edges = np.linspace(-6, 8, 29)
    counts, _ = np.histogram(z, edges)
    cdf = 0.2 * stats.norm(-3, 0.5).cdf(edges) + 0.8 * stats.norm(4, 1.0).cdf(edges)
    expected = 40000 * np.diff(cdf)
    chi2 = np.sum((counts - expected) ** 2 / np.maximum(expected, 1))
    assert chi2 < 60, chi2            # 28 bins: the 99.9% quantile of chi2(27) is 55.5
    assert abs(np.mean(z > 0.5) - 0.8) < 0.01


def test_vampprior_samples_follow_the_density():
    """Pseudo-inputs are drawn in proportion to the learned weights, not in order or uniformly."""
    model = make_vae("vampprior")
    model.prior.logits.assign(np.log([0.6, 0.1, 0.1, 0.1, 0.1]).astype("float32"))
    dist = model.prior_distribution()
    z = dist.sample(20000, seed=[3, 4])
    # The component that generated each sample is recoverable from the posterior responsibilities;
    # compare the sample mean of log p(z) with the density's own entropy estimate from scipy-free MC.
    comp = dist.components_distribution
    resp = tf.nn.softmax(comp.log_prob(z[:, None, :]) + dist.mixture_distribution.logits_parameter(), -1)
    np.testing.assert_allclose(tf.reduce_mean(resp, 0), [0.6, 0.1, 0.1, 0.1, 0.1], atol=0.015)
    assert np.abs(np.mean(z.numpy(), 0) - dist.mean().numpy()).max() < 0.05


@pytest.mark.parametrize("kwargs", [dict(num_components=0), dict(num_components=-2),
                                    dict(num_components=2.5), dict(init_scale=-1.0),
                                    dict(covariance="spherical")])
def test_mog_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Expected"):
        MixtureOfGaussiansPrior(2, **kwargs)


def test_vampprior_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_pseudo_inputs.*Received: num_pseudo_inputs=0"):
        VampPrior(2, num_pseudo_inputs=0, input_shape_=SHAPE)
    with pytest.raises(ValueError, match="init"):
        VampPrior(2, num_pseudo_inputs=2, input_shape_=SHAPE, init="zeros")
    prior = VampPrior(2, num_pseudo_inputs=3, input_shape_=SHAPE)
    prior.build()
    with pytest.raises(ValueError, match="encoder"):
        prior.distribution(None)
    with pytest.raises(ValueError, match=r"at least 3 images of shape \(4, 4, 1\)"):
        prior.initialize_from_data(np.zeros((2, 4, 4, 1)))
    bad = binary_images(5)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        prior.initialize_from_data(bad)


def test_vampprior_data_initialisation_uses_training_examples():
    images = binary_images(20)
    prior = VampPrior(2, num_pseudo_inputs=4, input_shape_=SHAPE, init="data",
                      trainable_pseudo_inputs=False)
    prior.initialize_from_data(images, seed=1)
    u = prior.pseudo_inputs().numpy()
    assert not prior.raw_pseudo_inputs.trainable
    for k in range(4):
        assert np.any(np.all(images == u[k], axis=(1, 2, 3)))
    enc = MLPEncoder(2, SHAPE, hidden_units=(8,))
    enc.build((None,) + SHAPE)
    assert prior.distribution(enc).batch_shape == []


def test_matmul_mixture_log_prob_matches_tfp_mixture_same_family():
    import tensorflow_probability as tfp
    from tfpriors.distributions import DiagonalGaussianMixture
    rng = np.random.default_rng(5)
    logits, loc = rng.normal(size=7).astype("float32"), rng.normal(size=(7, 4)).astype("float32") * 3
    scale = np.exp(rng.normal(size=(7, 4))).astype("float32") * 0.5
    z = rng.normal(size=(2, 9, 4)).astype("float32") * 3
    fast = DiagonalGaussianMixture.from_params(logits, loc, scale)
    tfd = tfp.distributions
    ref = tfd.MixtureSameFamily(tfd.Categorical(logits=logits), tfd.MultivariateNormalDiag(loc, scale))
    np.testing.assert_allclose(fast.log_prob(z), ref.log_prob(z), rtol=1e-5, atol=2e-4)
    np.testing.assert_allclose(fast.log_prob(loc), ref.log_prob(loc), rtol=1e-5, atol=2e-4)
    assert fast.log_prob(z).shape == (2, 9)
    np.testing.assert_allclose(fast.sample(3, seed=[1, 2]), ref.sample(3, seed=[1, 2]))
