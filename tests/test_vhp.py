"""The hierarchical prior: the IW bound against the closed-form marginal of a linear-Gaussian
model, exact ancestral sampling, gradients through a VAE loss, config and argument checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tests.helpers import SHAPE
from tfpriors.distributions import HierarchicalGaussian
from tfpriors.likelihoods import GaussianLikelihood
from tfpriors.networks import MLPDecoder, MLPEncoder
from tfpriors.priors.vhp import HierarchicalPrior
from trainers import ELBO, IWAE, VAE

# Linear-Gaussian model p(z|zeta) = N(A zeta + b, sigma^2 I), zeta ~ N(0, I_2), z in R^3.
# A = Q diag(c) with orthonormal Q makes the exact posterior p(zeta|z) diagonal:
#   Sigma = (I + A^T A / sigma^2)^-1 = diag(1 / (1 + c^2 / sigma^2)),  m(z) = Sigma A^T (z - b) / sigma^2
# and the marginal is N(b, A A^T + sigma^2 I) (full covariance).
_Q, _ = np.linalg.qr(np.array([[1.0, 0.3], [0.5, -1.0], [-0.7, 0.4]]))
C = np.array([1.5, 0.7])
A = _Q * C                                          # [3, 2]
B = np.array([0.3, -0.2, 0.5])
SIGMA = 0.6
POST_VAR = 1.0 / (1.0 + C ** 2 / SIGMA ** 2)        # [2]
MARGINAL = stats.multivariate_normal(B, A @ A.T + SIGMA ** 2 * np.eye(3))


def conditional(zeta):
    loc = tf.tensordot(zeta, tf.constant(A.T, tf.float32), 1) + tf.constant(B, tf.float32)
    return loc, SIGMA * tf.ones_like(loc)


def proposal(shift=0.0, inflate=1.0):
    def fn(z):
        mean = tf.tensordot(z - tf.constant(B, tf.float32), tf.constant(A, tf.float32), 1)
        mean = mean * tf.constant(POST_VAR / SIGMA ** 2, tf.float32) + shift
        return mean, inflate * tf.sqrt(tf.constant(POST_VAR, tf.float32)) * tf.ones_like(mean)
    return fn


def linear_gaussian(shift=0.0, inflate=1.0, **kwargs):
    return HierarchicalGaussian(conditional, proposal(shift, inflate), latent_dim=3,
                                hyper_latent_dim=2, **kwargs)


def test_shapes_and_sampling_match_the_closed_form_marginal():
    dist = linear_gaussian()
    assert dist.batch_shape == [] and dist.event_shape == [3]
    assert dist.sample([2, 5], seed=[0, 1]).shape == (2, 5, 3)
    z, zeta = dist.sample_with_hyper_latents(20000, seed=[4, 2])
    z, zeta = z.numpy().astype(np.float64), zeta.numpy().astype(np.float64)
    np.testing.assert_allclose(z.mean(0), B, atol=0.04)
    np.testing.assert_allclose(np.cov(z.T), MARGINAL.cov, atol=0.06)
    np.testing.assert_allclose(zeta.mean(0), 0.0, atol=0.03)
    residual = z - (zeta @ A.T + B)                 # z | zeta ~ N(A zeta + b, sigma^2 I)
    np.testing.assert_allclose(residual.std(0), SIGMA, rtol=0.03)
    np.testing.assert_array_equal(dist.sample(4, seed=[3, 3]), dist.sample(4, seed=[3, 3]))


@pytest.mark.parametrize("num_samples", [1, 3, 32])
def test_bound_is_exact_with_the_true_posterior_as_proposal(num_samples):
    dist = linear_gaussian()
    z = MARGINAL.rvs(8, random_state=1).astype("float32")
    exact = MARGINAL.logpdf(z)
    iw = dist.importance_weighted_log_prob(z, num_samples, seed=[1, 2])
    elbo = dist.elbo_log_prob(z, num_samples, seed=[1, 2])
    np.testing.assert_allclose(iw, exact, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(elbo, exact, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(dist.log_prob(z), exact, rtol=1e-5, atol=1e-4)


def test_iw_bound_increases_towards_the_exact_log_density_as_k_grows():
    dist = linear_gaussian(shift=0.6, inflate=1.7)   # a poor proposal: a visible gap at K = 1
    z = MARGINAL.rvs(10, random_state=2).astype("float32")
    exact = MARGINAL.logpdf(z).mean()
    reps = tf.tile(z[None], [300, 1, 1])             # [R, 10, 3]: independent draws per replicate
    means = [float(tf.reduce_mean(dist.importance_weighted_log_prob(reps, k, seed=[7, k])))
             for k in (1, 4, 16, 64, 256)]
    gaps = exact - np.array(means)
    assert np.all(np.diff(means) > 0), means
    assert np.all(gaps > -2e-3), gaps                # a lower bound (up to Monte-Carlo noise)
    assert gaps[0] > 0.3 and gaps[-1] < 0.05 * gaps[0], gaps
    elbo = float(tf.reduce_mean(dist.elbo_log_prob(reps, 4, seed=[7, 4])))
    np.testing.assert_allclose(elbo, means[0], atol=0.03)   # E[ELBO] = E[IW bound, K = 1]
    # log_prob: a deterministic estimate (fixed seed) converging to the exact value.
    fair = linear_gaussian(shift=0.2, inflate=1.2)
    lp = fair.log_prob(z)
    np.testing.assert_array_equal(lp, fair.log_prob(z))
    np.testing.assert_allclose(lp, MARGINAL.logpdf(z), atol=0.25)
    many = linear_gaussian(shift=0.2, inflate=1.2, log_prob_num_samples=4096, log_prob_chunk_size=100)
    np.testing.assert_allclose(many.log_prob(z), MARGINAL.logpdf(z), atol=0.05)


def make_vhp_vae(bound="iw", objective=None, seed=0):
    keras.utils.set_random_seed(seed)
    model = VAE(MLPEncoder(3, SHAPE, hidden_units=(16,)), MLPDecoder(3, SHAPE, hidden_units=(16,)),
                HierarchicalPrior(3, hyper_latent_dim=2, hidden_units=(8, 8), num_samples=4,
                                  bound=bound),
                GaussianLikelihood(scale=0.3), objective=objective, seed=seed)
    model.build((None,) + SHAPE)
    return model


@pytest.mark.parametrize("bound,objective", [("iw", ELBO(2)), ("elbo", ELBO(1)), ("iw", IWAE(3))])
def test_every_vhp_variable_gets_a_gradient_through_the_vae_loss(bound, objective):
    model = make_vhp_vae(bound, objective)
    x = tf.constant(np.random.default_rng(0).random((6,) + SHAPE), tf.float32)
    prior_vars = model.prior.trainable_variables
    assert len(prior_vars) == 2 * (2 * 2 + 4)         # 2 nets x (2 hidden + loc + log_var) x (W, b)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.objective(model, x, tf.constant(1.0), tf.constant([1, 2]))["loss"])
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads)
               if g is None or not np.any(g.numpy())]
    assert not missing, missing
    names = " ".join(v.path for v in prior_vars)
    assert "conditional" in names and "proposal" in names


def test_bound_choice_changes_the_prior_term():
    model_iw, model_elbo = make_vhp_vae("iw"), make_vhp_vae("elbo")
    for a, b in zip(model_iw.prior.weights, model_elbo.prior.weights):
        b.assign(a)
    z = tf.random.stateless_normal([5, 3], seed=[0, 9])
    seed = tf.constant([2, 3])
    iw = model_iw.prior.log_prob_estimate(model_iw.prior_distribution(), z, seed=seed)
    elbo = model_elbo.prior.log_prob_estimate(model_elbo.prior_distribution(), z, seed=seed)
    assert np.all(iw.numpy() >= elbo.numpy() - 1e-5) and np.any(iw.numpy() > elbo.numpy() + 1e-3)


def test_config_round_trip_and_save_load(tmp_path):
    layer = HierarchicalPrior(2, hyper_latent_dim=3, hidden_units=(5,), gated=True, num_samples=7,
                              bound="elbo", log_var_bounds=(-5, 1))
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert clone.get_config() == layer.get_config()
    assert HierarchicalPrior(4).get_config()["hyper_latent_dim"] == 4
    assert HierarchicalPrior(2).hidden_units == (256, 256, 256, 256)
    model = make_vhp_vae()
    model.save(tmp_path / "vhp.keras")
    loaded = keras.models.load_model(tmp_path / "vhp.keras")
    z = tf.random.stateless_normal([4, 3], seed=[1, 1])
    for m in (model, loaded):
        assert isinstance(m.prior, HierarchicalPrior)
    np.testing.assert_array_equal(
        loaded.prior.log_prob_estimate(loaded.prior_distribution(), z, seed=tf.constant([5, 5])),
        model.prior.log_prob_estimate(model.prior_distribution(), z, seed=tf.constant([5, 5])))
    np.testing.assert_array_equal(loaded.sample(3, seed=[1, 2])[1], model.sample(3, seed=[1, 2])[1])


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="num_samples.*Received: num_samples=0"):
        HierarchicalPrior(2, num_samples=0)
    with pytest.raises(ValueError, match="hyper_latent_dim.*Received: hyper_latent_dim=0"):
        HierarchicalPrior(2, hyper_latent_dim=0)
    with pytest.raises(ValueError, match="latent_dim.*Received: latent_dim=-1"):
        HierarchicalPrior(-1)
    with pytest.raises(ValueError, match=r"bound.*\['elbo', 'iw'\].*Received: bound='iwae'"):
        HierarchicalPrior(2, bound="iwae")
    with pytest.raises(ValueError, match="log_var_bounds"):
        HierarchicalPrior(2, log_var_bounds=(1.0, -1.0))
    with pytest.raises(ValueError, match="hidden_units.*Received: hidden_units=0"):
        HierarchicalPrior(2, hidden_units=(8, 0))
    dist = linear_gaussian()
    z = tf.zeros([2, 3])
    with pytest.raises(ValueError, match="num_samples.*Received: num_samples=-2"):
        dist.importance_weighted_log_prob(z, -2, seed=[0, 0])
    with pytest.raises(ValueError, match="num_samples.*Received: num_samples=0"):
        dist.elbo_log_prob(z, 0, seed=[0, 0])
    with pytest.raises(ValueError, match="callables"):
        HierarchicalGaussian(None, proposal(), 3, 2)


def test_identity_start_is_the_smoothed_hyper_prior_and_every_weight_then_trains():
    # With identity_scale s, p(z|zeta) = N(zeta, s^2 I) and q(zeta|z) = N(z, s^2 I) at the start,
    # so with zeta ~ N(0, I) the marginal is exactly N(0, (1 + s^2) I).
    s = 0.4
    layer = HierarchicalPrior(2, hidden_units=(8, 8), gated=True, num_samples=4, identity_scale=s)
    layer.build()
    x = tf.random.stateless_normal([6, 2], seed=[3, 1])
    for net in (layer.conditional, layer.proposal):
        loc, scale = net(x)
        np.testing.assert_allclose(loc, x, atol=1e-6)
        np.testing.assert_allclose(scale, s, rtol=1e-5)
    exact = stats.multivariate_normal(np.zeros(2), (1 + s ** 2) * np.eye(2)).logpdf(x.numpy())
    estimate = layer.distribution().importance_weighted_log_prob(x, 4000, seed=[0, 4])
    np.testing.assert_allclose(estimate, exact, atol=0.02)

    z = 1.5 * tf.random.stateless_normal([64, 2], seed=[7, 7])
    optimizer = keras.optimizers.Adam(1e-2)
    before = [v.numpy().copy() for v in layer.trainable_variables]
    for step in range(3):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(layer.log_prob_estimate(
                layer.distribution(), z, seed=tf.constant([step, 1])))
        grads = tape.gradient(loss, layer.trainable_variables)
        assert all(g is not None for g in grads)
        optimizer.apply_gradients(zip(grads, layer.trainable_variables))
    for v, b in zip(layer.trainable_variables, before):
        assert not np.allclose(v.numpy(), b), v.path


def test_identity_start_survives_save_load_and_checks_its_argument():
    layer = HierarchicalPrior(3, hidden_units=(5,), identity_scale=0.2)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert clone.get_config() == layer.get_config() and clone.identity_scale == 0.2
    assert HierarchicalPrior(3).get_config()["identity_scale"] is None
    with pytest.raises(ValueError, match="identity_scale.*Received: 0.0"):
        HierarchicalPrior(2, identity_scale=0.0)
    with pytest.raises(ValueError, match="identity_scale.*log_var_bounds.*Received: 100.0"):
        HierarchicalPrior(2, identity_scale=100.0)
    with pytest.raises(ValueError, match="hyper_latent_dim = latent_dim = 4.*Received: "
                                         "hyper_latent_dim=2"):
        HierarchicalPrior(4, hyper_latent_dim=2, identity_scale=0.1)
