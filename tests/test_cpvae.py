"""The CP-VAE (trainers/cpvae.py) and the cluster metrics (tfpriors/evaluation/clustering.py)."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tests.helpers import assert_kl_matches_monte_carlo, binary_images
from tfpriors.evaluation import cluster_accuracy, cluster_metrics, log_likelihood, majority_accuracy
from tfpriors.export import CLUSTER_SIGNATURES, export_sampler, load_sampler
from tfpriors.likelihoods import BernoulliLikelihood, GaussianLikelihood
from tfpriors.priors import MixtureOfGaussiansPrior, StandardNormalPrior, VampPrior
from trainers.cpvae import build_cpvae, gumbel_from_normal

SHAPE = (4, 4, 1)


def small_cpvae(prior="mog", k=3, d=2, covariance="diagonal", **kwargs):
    keras.utils.set_random_seed(0)
    layer = (MixtureOfGaussiansPrior(d, num_components=k, learn_weights=True, covariance=covariance)
             if prior == "mog" else VampPrior(d, num_pseudo_inputs=k, input_shape_=SHAPE))
    model = build_cpvae(SHAPE, layer, BernoulliLikelihood(), hidden_units=(8, 8), **kwargs)
    model.build()
    return model


@pytest.mark.parametrize("z_input", ["probabilities", "category"])
def test_kl_decomposition_equals_the_monte_carlo_kl_of_the_joint(z_input):
    assert_kl_matches_monte_carlo(small_cpvae(z_input=z_input), binary_images(4), 40000, [3, 4])


def _tilted(model):
    """The small CP-VAE's full-covariance p(z|c_k) made clearly non-diagonal."""
    rng = np.random.default_rng(7)
    model.prior.raw_scale_tril.assign(rng.normal(size=(3, 3)).astype("float32"))
    model.prior.loc.assign([[2.0, -1.0], [0.0, 0.5], [-3.0, 1.0]])
    return model


@pytest.mark.parametrize("z_input", ["probabilities", "category"])
def test_kl_decomposition_with_full_covariance_components_equals_the_monte_carlo_kl(z_input):
    model = _tilted(small_cpvae(z_input=z_input, covariance="full"))
    tril = model.prior.scale_tril().numpy()
    assert np.all(np.abs(tril[:, 1, 0]) > 0.05)
    assert_kl_matches_monte_carlo(model, binary_images(4), 40000, [3, 4])


def test_the_papers_z_head_gives_one_q_z_given_x_for_every_category():
    """z_input="probabilities" (Fig. 2): q(z|x, c) from [h(x), pi(x)], whatever c is drawn, and the
    KL is KL(q(c|x) || p(c)) + sum_k pi_k KL(q(z|x) || p(z|c_k)) by numpy's closed forms."""
    model = small_cpvae(z_input="probabilities")
    model.prior.loc.assign([[2.0, -1.0], [0.0, 0.5], [-3.0, 1.0]])
    x = tf.constant(binary_images(5))
    inference = model.infer(x)
    eps = tf.random.stateless_normal([50, 5, model.noise_dim], seed=[3, 1])
    sample = model.sample_posterior(inference, eps)
    q_z = model.posterior(x)
    loc, scale = q_z.mean().numpy(), q_z.stddev().numpy()                  # [5, 2]
    z, c = model.split(sample.code)
    assert len(np.unique(np.argmax(c.numpy(), -1))) == 3                   # every category drawn
    log_pi = np.log(model.cluster(x).numpy())
    expected_log_q = (np.sum(c.numpy() * log_pi, -1) +
                      stats.norm(loc, scale).logpdf(z.numpy()).sum(-1))
    np.testing.assert_allclose(sample.log_q.numpy(), expected_log_q, rtol=1e-5, atol=1e-4)
    components = model.prior.component_distribution(model.prior_distribution())
    mu, sd = components.mean().numpy(), components.stddev().numpy()      # [3, 2]
    kl_z = np.sum(np.log(sd[:, None] / scale[None]) + (scale[None] ** 2 + (loc[None] - mu[:, None]) ** 2)
                  / (2 * sd[:, None] ** 2) - 0.5, axis=-1)                 # [3, 5]
    log_pc = np.log(model.prior.distribution().mixture_distribution.probs_parameter().numpy())
    pi = np.exp(log_pi)
    expected = np.sum(pi * (log_pi - log_pc), -1) + np.sum(pi.T * kl_z, 0)
    np.testing.assert_allclose(model.analytic_kl(inference).numpy(), expected, rtol=1e-4)


def test_an_unknown_z_input_is_a_clear_error():
    with pytest.raises(ValueError, match="z_input"):
        small_cpvae(z_input="relaxed")


def test_an_unknown_decoder_input_is_a_clear_error():
    with pytest.raises(ValueError, match="decoder_input"):
        small_cpvae(decoder_input="c")


def test_a_decoder_on_z_alone_ignores_c_and_survives_save_and_load(tmp_path):
    """decoder_input="z": p(x|z), the decoder built on z only; the code's c changes nothing, while
    the paper's p(x|z, c) decodes the same z differently for another c."""
    x = binary_images(6)
    z = tf.random.stateless_normal([6, 2], seed=[4, 2])
    codes = [tf.concat([z, tf.one_hot(tf.fill([6], k), 3)], -1) for k in range(3)]
    model = small_cpvae(decoder_input="z")
    assert list(model.decoder.input_dims) == [2]
    params = [model.likelihood_params(code).numpy() for code in codes]
    for other in params[1:]:
        np.testing.assert_array_equal(other, params[0])
    paper = small_cpvae()
    assert list(paper.decoder.input_dims) == [2, 3]
    assert not np.allclose(paper.likelihood_params(codes[0]), paper.likelihood_params(codes[1]))
    model.save(tmp_path / "cpvae.keras")
    loaded = keras.models.load_model(tmp_path / "cpvae.keras")
    assert loaded.decoder_input == "z"
    np.testing.assert_allclose(loaded.likelihood_params(codes[2]), params[0], rtol=1e-6)
    np.testing.assert_allclose(loaded.cluster(x), model.cluster(x), rtol=1e-6)


def test_sampled_categories_follow_q_c_given_x_and_are_one_hot():
    model = small_cpvae()
    x = tf.constant(binary_images(2))
    inference = model.infer(x)
    eps = tf.random.stateless_normal([20000, 2, model.noise_dim], seed=[1, 1])
    _, c = model.split(model.sample_posterior(inference, eps).code)
    c = c.numpy()
    assert set(np.unique(c)) <= {0.0, 1.0} and np.all(c.sum(-1) == 1.0)
    np.testing.assert_allclose(c.mean(axis=0), model.cluster(x).numpy(), atol=0.01)
    g = gumbel_from_normal(tf.random.stateless_normal([100000], seed=[2, 2])).numpy()
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue > 1e-3


def test_component_samples_follow_p_z_given_c():
    model = small_cpvae()
    model.prior.loc.assign([[2.0, -1.0], [0.0, 0.5], [-3.0, 1.0]])
    components = model.prior.component_distribution(model.prior_distribution())
    for k in range(3):
        _, code = model.sample_component(k, 50000, tf.constant([k, 9]))
        z, c = model.split(code)
        assert np.all(c.numpy()[:, k] == 1.0)
        np.testing.assert_allclose(z.numpy().mean(0), components.mean()[k], atol=0.02)
        np.testing.assert_allclose(z.numpy().std(0), components.stddev()[k], atol=0.02)
    full = _tilted(small_cpvae(covariance="full"))
    tril = full.prior.scale_tril().numpy()
    for k in range(3):
        _, code = full.sample_component(k, 50000, tf.constant([k, 8]))
        z = full.split(code)[0].numpy()
        np.testing.assert_allclose(z.mean(0), full.prior.loc.numpy()[k], atol=0.03)
        np.testing.assert_allclose(np.cov(z.T), tril[k] @ tril[k].T, atol=0.05, rtol=0.03)
    # generation draws c from the aggregated posterior once it is estimated (Eq. 14)
    x = binary_images(50)
    q_c = model.estimate_aggregated_posterior(x)
    np.testing.assert_allclose(q_c, model.cluster(x).numpy().mean(0), rtol=1e-5)
    _, c = model.split(model.sample_latents(40000, tf.constant([4, 4])))
    np.testing.assert_allclose(c.numpy().mean(0), q_c, atol=0.01)


@pytest.mark.parametrize("z_input, decoder_input, covariance", [
    ("probabilities", "z_and_c", "diagonal"), ("category", "z_and_c", "diagonal"),
    ("probabilities", "z", "diagonal"), ("probabilities", "z", "full")])
def test_every_prior_parameter_gets_a_gradient_and_changes_in_training(z_input, decoder_input,
                                                                       covariance):
    model = small_cpvae(z_input=z_input, decoder_input=decoder_input, covariance=covariance)
    model.compile(keras.optimizers.Adam(1e-2))
    x = binary_images(64)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.objective(model, tf.constant(x[:16]), 1.0, tf.constant([0, 1]))["loss"])
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None or not np.any(g)]
    assert not missing
    names = " ".join(v.path for v in model.trainable_variables)
    assert "cluster_logits" in names and "mixture_of_gaussians_prior" in names
    before = [v.numpy().copy() for v in model.prior.trainable_variables]
    model.fit(x, batch_size=16, epochs=2, verbose=0)
    for value, v in zip(before, model.prior.trainable_variables):
        assert not np.allclose(v.numpy(), value), v.path


def _linear_discrete_gaussian():
    """p(c) softmax(logits), p(z|c_k) N(mu_k, s_k^2), x = W z + V c + b + sigma e; q = the prior's
    conditionals with a uniform q(c|x) (q(z|x, c) from the one-hot c: z_input="category"). Returns (model, exact log p(x), draw(n, seed) of x)."""
    shape, k, d = (2, 1, 1), 3, 1
    keras.utils.set_random_seed(0)
    prior = MixtureOfGaussiansPrior(d, num_components=k, learn_weights=True)
    from tfpriors.networks import ConditionalDecoder, ConditionalGaussian, FeatureNetwork
    from trainers import CPVAE
    model = CPVAE(FeatureNetwork(shape, (4,)),
                  ConditionalGaussian(d, [4, k], branch_units=(), hidden_units=()),
                  ConditionalDecoder(shape, [d, k], branch_units=(), hidden_units=()),
                  prior, GaussianLikelihood(scale=0.5, learn_scale=False), z_input="category")
    model.build()
    mu, s, logits = np.array([[-1.5], [0.2], [2.0]]), np.array([[0.6], [0.8], [0.5]]), np.array([0.3, -0.4, 0.1])
    prior.loc.assign(mu)
    prior.raw_scale.assign(np.log(np.expm1(s - prior.min_scale)))
    prior.logits.assign(logits)
    w, v, b = np.array([[1.0], [-0.7]]), np.array([[0.5, -0.3, 0.8], [0.2, 0.6, -0.4]]), np.array([0.1, -0.2])
    model.decoder.out.kernel.assign(np.concatenate([w.T, v.T], axis=0))   # rows: z, then c
    model.decoder.out.bias.assign(b)
    model.cluster_head.kernel.assign(np.zeros((4, k)))                    # q(c|x) uniform
    model.cluster_head.bias.assign(np.zeros(k))
    model.encoder_z.loc_head.kernel.assign(np.concatenate([np.zeros((4, d)), mu], axis=0))
    model.encoder_z.loc_head.bias.assign(np.zeros(d))
    model.encoder_z.log_var_head.kernel.assign(np.concatenate([np.zeros((4, d)), np.log(s ** 2)], 0))
    model.encoder_z.log_var_head.bias.assign(np.zeros(d))
    weights = np.exp(logits - np.logaddexp.reduce(logits))

    def draw(n, seed):
        rng = np.random.default_rng(seed)
        c = rng.choice(k, size=n, p=weights)
        z = mu[c, 0] + s[c, 0] * rng.normal(size=n)
        return z[:, None] * w[:, 0] + v[:, c].T + b + 0.5 * rng.normal(size=(n, 2))

    def exact(x):
        parts = [np.log(weights[j]) + stats.multivariate_normal(
            w @ mu[j] + v[:, j] + b, s[j, 0] ** 2 * w @ w.T + 0.25 * np.eye(2)).logpdf(x)
            for j in range(k)]
        return np.logaddexp.reduce(parts, axis=0)
    return model, exact, draw


def test_importance_sampling_through_c_and_z_matches_the_closed_form_marginal():
    model, exact, draw = _linear_discrete_gaussian()
    x = draw(6, seed=2)                                      # data from the model itself
    estimate = log_likelihood(model, x.reshape(6, 2, 1, 1).astype(np.float32), num_samples=20000,
                              seed=3)
    np.testing.assert_allclose(estimate.per_example, exact(x), atol=0.05)


@pytest.mark.parametrize("prior, options", [("vampprior", {}),
                                           ("mog", {"covariance": "full", "decoder_input": "z"})])
def test_trains_saves_and_exports_with_a_cluster_signature(tmp_path, prior, options):
    model = small_cpvae(prior, temperature_rate=1e-2, **options)
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=True)
    x = binary_images(64)
    history = model.fit(x, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert float(model.temperature()) < 1.0                               # annealed with the step
    model.estimate_aggregated_posterior(x)
    model.save(tmp_path / "cpvae.keras")
    loaded = keras.models.load_model(tmp_path / "cpvae.keras")
    np.testing.assert_allclose(loaded.aggregated_posterior.numpy(), model.aggregated_posterior.numpy())
    np.testing.assert_allclose(loaded.cluster(x[:5]), model.cluster(x[:5]), rtol=1e-6)
    export_sampler(model, str(tmp_path / "cp"), max_samples=50)
    served = load_sampler(str(tmp_path / "cp"))
    assert set(CLUSTER_SIGNATURES) <= set(served.signatures)
    probs = served.cluster(images=tf.constant(x[:5]))["probabilities"]
    np.testing.assert_allclose(probs, model.cluster(x[:5]), rtol=1e-5, atol=1e-6)
    comp = served.sample_component(component=tf.constant(1), num_samples=tf.constant(4),
                                   seed=tf.constant([1, 2]))
    assert np.all(comp["z"].numpy()[:, model.z_dim + 1] == 1.0)
    ll = served.log_likelihood(images=tf.constant(x[:4]), num_samples=tf.constant(30),
                               seed=tf.constant([5, 0]))["log_likelihood"]
    np.testing.assert_allclose(ll, log_likelihood(model, x[:4], num_samples=30, seed=5).per_example,
                               rtol=1e-4)


def test_cluster_accuracy_is_the_best_one_to_one_map():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    perm = np.array([2, 0, 3, 1])
    assert cluster_accuracy(perm[labels], labels)[0] == 1.0
    clusters = rng.integers(0, 4, 200)
    brute = max(np.mean(np.array(p)[clusters] == labels) for p in itertools.permutations(range(4)))
    assert cluster_accuracy(clusters, labels)[0] == pytest.approx(brute)
    model = small_cpvae()
    metrics = cluster_metrics(model, binary_images(30), rng.integers(0, 3, 30))
    assert 0.0 <= metrics["accuracy"] <= metrics["majority_accuracy"] <= 1.0
    assert set(metrics) >= {"nmi", "ari", "mapping"}
    with pytest.raises(ValueError, match="equal length"):
        cluster_accuracy([0, 1], [0])


def test_majority_accuracy_is_the_best_many_to_one_map():
    rng = np.random.default_rng(1)
    labels, clusters = rng.integers(0, 3, 120), rng.integers(0, 4, 120)
    brute = max(np.mean(np.array(m)[clusters] == labels)
                for m in itertools.product(range(3), repeat=4))
    accuracy, mapping = majority_accuracy(clusters, labels)
    assert accuracy == pytest.approx(brute)
    assert np.mean(np.array([mapping[c] for c in clusters]) == labels) == pytest.approx(accuracy)
    # two clusters that hold one digit each count fully here, and half under Hungarian matching
    assert majority_accuracy([0, 0, 1, 1], [5, 5, 5, 5])[0] == 1.0
    assert cluster_accuracy([0, 0, 1, 1], [5, 5, 5, 5])[0] == 0.5
    with pytest.raises(ValueError, match="equal length"):
        majority_accuracy([0, 1], [0])


def test_a_prior_without_components_is_a_clear_error():
    with pytest.raises(ValueError, match="Expected a mixture prior.*StandardNormalPrior"):
        build_cpvae(SHAPE, StandardNormalPrior(2), BernoulliLikelihood(), hidden_units=(8,))
