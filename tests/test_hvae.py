"""The two-level HVAE (trainers/hvae.py) on the latent interface."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tests.helpers import assert_kl_matches_monte_carlo, binary_images
from tfpriors.evaluation import elbo, log_likelihood
from tfpriors.export import export_sampler, load_sampler
from tfpriors.likelihoods import BernoulliLikelihood, GaussianLikelihood
from tfpriors.networks import ConditionalDecoder, ConditionalGaussian, MLPEncoder
from tfpriors.priors import MixtureOfGaussiansPrior, StandardNormalPrior, VampPrior
from trainers import HVAE, IWAE, REWO
from trainers.hvae import build_hvae

SHAPE = (4, 4, 1)


def small_hvae(prior="vampprior", d1=2, d2=3, **kwargs):
    keras.utils.set_random_seed(0)
    layer = {"vampprior": lambda: VampPrior(d2, num_pseudo_inputs=5, input_shape_=SHAPE,
                                            learn_weights=True),
             "mog": lambda: MixtureOfGaussiansPrior(d2, num_components=3, learn_weights=True),
             "standard_normal": lambda: StandardNormalPrior(d2)}[prior]()
    model = build_hvae(SHAPE, layer, BernoulliLikelihood(), latent_dims=(d1, d2), hidden_units=8,
                       **kwargs)
    model.build()
    return model


# ---------------------------------------------------------------- a linear-Gaussian model
# z2 ~ N(0, 1);  z1 | z2 ~ N(A z2 + a, diag s1^2);  x | z ~ N(W [z1; z2] + b, sigma^2 I)
A, A0, S1 = np.array([[0.8], [-0.5]]), np.array([0.3, -0.2]), np.array([0.7, 0.9])
W, B0, SIGMA = np.array([[1.0, 0.5, 0.3], [-0.4, 0.9, 0.6], [0.2, -0.3, 1.1]]), \
    np.array([0.1, -0.2, 0.05]), 0.5
LIN_SHAPE = (3, 1, 1)


def _prior_moments():
    mean = np.concatenate([A0, [0.0]])
    cov = np.zeros((3, 3))
    cov[:2, :2] = A @ A.T + np.diag(S1 ** 2)
    cov[:2, 2:] = A
    cov[2:, :2] = A.T
    cov[2, 2] = 1.0
    return mean, cov


def _linear_gaussian_hvae():
    """The model above as an HVAE with linear networks, and q set close to the posterior."""
    keras.utils.set_random_seed(0)
    model = HVAE(MLPEncoder(1, LIN_SHAPE, hidden_units=()),
                 ConditionalGaussian(2, [3, 1], branch_units=(), hidden_units=()),
                 ConditionalGaussian(2, [1], branch_units=(), hidden_units=()),
                 ConditionalDecoder(LIN_SHAPE, [2, 1], branch_units=(), hidden_units=()),
                 StandardNormalPrior(1), GaussianLikelihood(scale=SIGMA, learn_scale=False))
    model.build()
    model.prior_z1.loc_head.kernel.assign(A.T)
    model.prior_z1.loc_head.bias.assign(A0)
    model.prior_z1.log_var_head.kernel.assign(np.zeros((1, 2)))
    model.prior_z1.log_var_head.bias.assign(np.log(S1 ** 2))
    model.decoder.out.kernel.assign(W.T)
    model.decoder.out.bias.assign(B0)
    # Exact posterior of z = [z1; z2] given x: Gaussian (mean m0 + M x, covariance P).
    mean, cov = _prior_moments()
    precision = np.linalg.inv(cov) + W.T @ W / SIGMA ** 2
    post = np.linalg.inv(precision)
    m0 = post @ (np.linalg.inv(cov) @ mean - W.T @ B0 / SIGMA ** 2)
    big_m = post @ W.T / SIGMA ** 2
    model.encoder_z2.loc_head.kernel.assign(big_m[2:].T)
    model.encoder_z2.loc_head.bias.assign(m0[2:])
    model.encoder_z2.log_var_head.kernel.assign(np.zeros((3, 1)))
    model.encoder_z2.log_var_head.bias.assign(np.log([post[2, 2]]))
    gain = post[:2, 2] / post[2, 2]                                   # E[z1 | x, z2] slope in z2
    kernel = np.concatenate([(big_m[:2] - np.outer(gain, big_m[2])).T, gain[None]], axis=0)
    model.encoder_z1.loc_head.kernel.assign(kernel)                  # [x (3); z2 (1)] -> z1 (2)
    model.encoder_z1.loc_head.bias.assign(m0[:2] - gain * m0[2])
    model.encoder_z1.log_var_head.kernel.assign(np.zeros((4, 2)))
    conditional = np.diag(post[:2, :2] - np.outer(post[:2, 2], post[2, :2]) / post[2, 2])
    model.encoder_z1.log_var_head.bias.assign(np.log(conditional))   # diagonal: q is not exact
    return model


def test_importance_sampling_through_both_layers_matches_the_closed_form_marginal():
    model = _linear_gaussian_hvae()
    mean, cov = _prior_moments()
    x = np.random.default_rng(3).normal(size=(6, 3)) * 1.5
    exact = stats.multivariate_normal(W @ mean + B0, W @ cov @ W.T + SIGMA ** 2 * np.eye(3)).logpdf(x)
    images = x.reshape((6,) + LIN_SHAPE).astype(np.float32)
    estimate = log_likelihood(model, images, num_samples=5000, seed=1)
    np.testing.assert_allclose(estimate.per_example, exact, atol=0.05)
    bound = elbo(model, images, num_samples=2000, seed=1).per_example
    assert np.all(bound <= exact + 1e-3) and np.all(bound > exact - 1.0)   # q close, not exact


def test_every_hvae_parameter_gets_a_gradient():
    model = small_hvae("vampprior")
    model.compile(keras.optimizers.Adam(1e-3))
    x = tf.constant(binary_images(8))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.objective(model, x, 1.0, tf.constant([0, 1]))["loss"])
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads)
               if g is None or not np.any(g.numpy())]
    assert not missing
    names = " ".join(v.path for v in model.trainable_variables)
    for part in ("q_z2", "q_z1", "p_z1", "p_x", "pseudo_inputs", "logits"):
        assert part in names


def _bin_probabilities(code, edges):
    counts, _, _ = np.histogram2d(code[:, 0], code[:, 1], bins=[edges, edges])
    return counts / code.shape[0]


def test_hvae_samples_follow_the_density_used_in_training():
    """code = [z1, z2] (1 + 1 dims) drawn by sample_latents vs exp(log_prior) on a grid."""
    model = small_hvae("mog", d1=1, d2=1)
    model.compile(keras.optimizers.Adam(1e-2))
    model.fit(binary_images(64), batch_size=16, epochs=3, verbose=0)
    code = model.sample_latents(200000, tf.constant([3, 4])).numpy()
    edges = np.linspace(-3.5, 3.5, 15)
    fine = np.linspace(-3.5, 3.5, 14 * 20 + 1)                    # 20 x 20 cells per bin
    centres = 0.5 * (fine[1:] + fine[:-1])
    grid = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2).astype(np.float32)
    inference = model.infer(tf.zeros((1,) + SHAPE))
    density = np.exp(model.log_prior(inference, tf.constant(grid)[:, None, :]).numpy()[:, 0])
    cell = (fine[1] - fine[0]) ** 2
    expected = (density * cell).reshape(14, 20, 14, 20).sum(axis=(1, 3))
    observed = _bin_probabilities(code, edges)
    assert expected.sum() > 0.95
    np.testing.assert_allclose(observed, expected, atol=0.006)
    # component sampling: z2 from one component of p(z2) alone
    component = model.prior_distribution().components_distribution[1]
    _, comp_code = model.sample_component(1, 50000, tf.constant([5, 6]))
    z2 = comp_code.numpy()[:, 1]
    assert abs(z2.mean() - float(component.mean()[0])) < 0.02
    assert abs(z2.std() - float(component.stddev()[0])) < 0.02


def test_closed_form_kl_per_level_equals_the_monte_carlo_kl():
    assert_kl_matches_monte_carlo(small_hvae("standard_normal"), binary_images(4), 20000, [1, 2])
    x = tf.constant(binary_images(4))
    eps = tf.random.stateless_normal([10, 4, 5], seed=[1, 2])
    mixture = small_hvae("mog")                        # no closed form: Monte Carlo
    inference = mixture.infer(x)
    sample = mixture.sample_posterior(inference, eps[:10])
    log_p = mixture.log_prior(inference, sample.code)
    np.testing.assert_allclose(mixture.kl_divergence(inference, sample, log_p),
                               tf.reduce_mean(sample.log_q - log_p, axis=0), rtol=1e-6)


def test_hvae_trains_with_iwae_and_rewo_and_saves(tmp_path):
    model = small_hvae("vampprior", objective=IWAE(3), beta=REWO(kappa=0.45, nu=1.0, initial_beta=0.1))
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=True, steps_per_execution=2)
    x = binary_images(64)
    history = model.fit(x, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    model.save(tmp_path / "hvae.keras")
    loaded = keras.models.load_model(tmp_path / "hvae.keras")
    assert isinstance(loaded, HVAE) and loaded.latent_dims == (2, 3)
    a = log_likelihood(model, x[:8], num_samples=50, seed=2).per_example
    b = log_likelihood(loaded, x[:8], num_samples=50, seed=2).per_example
    np.testing.assert_allclose(a, b, rtol=1e-6)
    for name, block in model.optimizer.blocks.items():
        for u, v in zip(block.variables, loaded.optimizer.blocks[name].variables):
            np.testing.assert_array_equal(u.numpy(), v.numpy())


def test_hvae_exports_the_same_signatures(tmp_path):
    model = small_hvae("vampprior")
    x = binary_images(6)
    export_sampler(model, str(tmp_path / "hvae"), max_samples=100)
    served = load_sampler(str(tmp_path / "hvae"))
    out = served.sample(num_samples=tf.constant(4), seed=tf.constant([1, 2]))
    assert out["images"].shape == (4,) + SHAPE and out["z"].shape == (4, 5)
    images, code = model.sample(4, tf.constant([1, 2]))
    np.testing.assert_allclose(out["z"], code, rtol=1e-6)
    comp = served.sample_component(component=tf.constant(2), num_samples=tf.constant(3),
                                   seed=tf.constant([1, 2]))
    assert comp["z"].shape == (3, 5)
    enc = served.encode(images=tf.constant(x))
    np.testing.assert_allclose(enc["loc"], model.encode(x), rtol=1e-5, atol=1e-6)
    dec = served.decode(z=enc["loc"])
    np.testing.assert_allclose(dec["images"], model(x), rtol=1e-5, atol=1e-6)
    ll = served.log_likelihood(images=tf.constant(x), num_samples=tf.constant(40),
                               seed=tf.constant([7, 0]))["log_likelihood"]
    np.testing.assert_allclose(ll, log_likelihood(model, x, num_samples=40, seed=7).per_example,
                               rtol=1e-4)


def test_parts_that_do_not_fit_are_a_clear_error():
    with pytest.raises(ValueError, match="prior: 2 vs 3"):
        build_hvae(SHAPE, StandardNormalPrior(2), BernoulliLikelihood(), latent_dims=(2, 3),
                   hidden_units=4)
    with pytest.raises(ValueError, match=r"decoder inputs: \[2, 4\] vs \[2, 3\]"):
        HVAE(MLPEncoder(3, SHAPE, hidden_units=(4,)), ConditionalGaussian(2, [16, 3]),
             ConditionalGaussian(2, [3]), ConditionalDecoder(SHAPE, [2, 4]),
             StandardNormalPrior(3), BernoulliLikelihood())
    layer = ConditionalGaussian(2, [3], branch_units=(4,), hidden_units=())
    with pytest.raises(ValueError, match=r"last dimensions \[3\]"):
        layer([tf.zeros((2, 5))])


def test_interpolation_and_diagnostics_work_on_the_hvae_code():
    from tfpriors.evaluation import active_units, kl_per_dimension
    from tfpriors.interpolation import graph_interpolation, linear_interpolation
    model = small_hvae("vampprior")
    x = binary_images(20)
    linear = linear_interpolation(model, x[0], x[1], 5)
    assert linear.latents.shape == (5, 5) and linear.images.shape == (5,) + SHAPE
    np.testing.assert_allclose(linear.latents[0], model.encode(x[:1])[0], rtol=1e-5, atol=1e-6)
    graph = graph_interpolation(model, x[0], x[1], num_nodes=100, k=8, seed=0)
    assert graph.latents.shape[1] == 5 and graph.images.shape[1:] == SHAPE
    assert kl_per_dimension(model, x).per_dimension.shape == (3,)       # the prior's latent, z2
    assert active_units(model, x).variances.shape == (5,)               # the whole code
