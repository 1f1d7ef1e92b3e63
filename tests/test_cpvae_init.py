"""The CP-VAE's Gaussian-mixture initialisation (trainers/cpvae_init.py)."""

import json

import keras
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from tests.test_cpvae import SHAPE, small_cpvae
from trainers import train as train_cli
from trainers.config import build_parser, parse_config
from trainers.cpvae_init import GMMInitialisation, gmm_init_callbacks, initialize_from_gmm


def clustered_images(n=300, seed=0, flip=0.05):
    """Binary 4x4 images around three prototypes (each pixel flipped with probability `flip`)."""
    rng = np.random.default_rng(seed)
    prototypes = np.zeros((3, 16), np.float32)
    prototypes[0, :6], prototypes[1, 5:11], prototypes[2, 10:] = 1, 1, 1
    labels = rng.integers(0, 3, n)
    flips = rng.random((n, 16)) < flip
    return np.abs(prototypes[labels] - flips).reshape((n,) + SHAPE).astype(np.float32), labels


def _codes(model, x):
    return model.posterior(x).mean().numpy()


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_the_prior_becomes_the_mixture_fitted_to_the_codes(covariance_type):
    model = small_cpvae(k=3, d=2)
    x, _ = clustered_images()
    codes = _codes(model, x)
    result = initialize_from_gmm(model, x, covariance_type=covariance_type, n_init=2, seed=3)
    gmm = GaussianMixture(3, covariance_type=covariance_type, n_init=2, random_state=3,
                          reg_covar=1e-6).fit(codes)
    variances = gmm.covariances_ if covariance_type == "diag" else \
        np.stack([np.diag(c) for c in gmm.covariances_])
    components = model.prior.distribution().components_distribution
    np.testing.assert_allclose(components.mean(), gmm.means_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(components.stddev(), np.sqrt(variances), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(np.exp(model.prior.logits.numpy()), gmm.weights_, rtol=1e-4)
    np.testing.assert_allclose(result["mean_log_likelihood"], gmm.score(codes), rtol=1e-5)
    np.testing.assert_allclose(result["weights"], gmm.weights_, rtol=1e-6)


def test_a_full_covariance_prior_takes_the_fitted_covariances_whole():
    model = small_cpvae(k=3, d=2, covariance="full")
    x, _ = clustered_images()
    codes = _codes(model, x)
    initialize_from_gmm(model, x, covariance_type="full", n_init=2, seed=3)
    gmm = GaussianMixture(3, covariance_type="full", n_init=2, random_state=3,
                          reg_covar=1e-6).fit(codes)
    components = model.prior.distribution().components_distribution
    np.testing.assert_allclose(components.mean(), gmm.means_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(components.covariance(), gmm.covariances_, rtol=2e-3, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")   # k-means start on 3 points
def test_a_dirichlet_process_mixture_switches_off_the_components_the_codes_do_not_need():
    from sklearn.mixture import BayesianGaussianMixture
    model = small_cpvae(k=8, d=2)
    x, _ = clustered_images(600, flip=0.0)          # three distinct images: three codes
    codes = _codes(model, x)
    result = initialize_from_gmm(model, x, mixture="dirichlet_process", n_init=1, seed=2,
                                 batch_size=len(x))       # the codes _codes computes, bit for bit
    reference = BayesianGaussianMixture(
        n_components=8, covariance_type="diag", n_init=1, random_state=2, reg_covar=1e-6,
        weight_concentration_prior_type="dirichlet_process", weight_concentration_prior=1 / 8,
        max_iter=500).fit(codes)
    np.testing.assert_allclose(result["weights"], reference.weights_, rtol=1e-6)
    np.testing.assert_allclose(model.prior.loc.numpy(), reference.means_, rtol=1e-4, atol=1e-5)
    weights = np.exp(model.prior.logits.numpy())                      # p(c), learned weights
    np.testing.assert_allclose(weights, reference.weights_, rtol=1e-4, atol=1e-12)
    assert np.sum(weights > 0.01) == 3, weights


def test_a_subsample_of_the_codes_is_fitted_and_every_image_is_assigned():
    model = small_cpvae(k=3, d=2)
    x, _ = clustered_images()
    codes = _codes(model, x)
    result = initialize_from_gmm(model, x, n_init=1, fit_codes=100, seed=4, batch_size=len(x))
    subsample = codes[np.random.default_rng(4).choice(len(codes), 100, replace=False)]
    gmm = GaussianMixture(3, covariance_type="diag", n_init=1, random_state=4,
                          reg_covar=1e-6).fit(subsample)
    np.testing.assert_allclose(model.prior.loc.numpy(), gmm.means_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result["weights"], gmm.weights_, rtol=1e-6)
    np.testing.assert_allclose(result["mean_log_likelihood"], gmm.score(codes), rtol=1e-5)
    assert not np.allclose(gmm.means_, GaussianMixture(3, covariance_type="diag", n_init=1,
                                                       random_state=4).fit(codes).means_)


def test_the_cluster_head_follows_the_responsibilities():
    model = small_cpvae(k=3, d=2)
    x, _ = clustered_images()
    codes = _codes(model, x)
    before = np.mean(model.cluster(x).numpy().argmax(-1) == 0)
    result = initialize_from_gmm(model, x, head_epochs=60, batch_size=50, learning_rate=1e-2, seed=1)
    gmm = GaussianMixture(3, n_init=3, random_state=1, covariance_type="diag", reg_covar=1e-6).fit(codes)
    agreement = np.mean(model.cluster(x).numpy().argmax(-1) == gmm.predict(codes))
    assert result["agreement"] == pytest.approx(agreement, abs=1e-6)
    assert agreement > 0.9, (agreement, before)
    assert result["head_cross_entropy"] < 0.5


def test_only_the_prior_and_the_cluster_head_change():
    model = small_cpvae(k=3, d=2)
    x, _ = clustered_images()
    others = {v.path: v.numpy().copy() for v in model.weights
              if "cluster_logits" not in v.path and "mixture_of_gaussians_prior" not in v.path}
    head = [v.numpy().copy() for v in model.cluster_head.weights]
    initialize_from_gmm(model, x)
    for v in model.weights:
        if v.path in others:
            np.testing.assert_array_equal(v.numpy(), others[v.path], err_msg=v.path)
    assert any(not np.allclose(a, v.numpy()) for a, v in zip(head, model.cluster_head.weights))


@pytest.mark.parametrize("kwargs, message", [
    ({"covariance_type": "spherical"}, "covariance_type"),
    ({"n_init": 0}, "n_init"),
    ({"head_epochs": -1}, "head_epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"learning_rate": -1e-3}, "learning_rate"),
    ({"mixture": "kmeans"}, "mixture"),
    ({"fit_codes": 0}, "fit_codes"),
])
def test_invalid_options_are_clear_errors(kwargs, message):
    model = small_cpvae(k=3, d=2)
    with pytest.raises(ValueError, match=message):
        initialize_from_gmm(model, clustered_images()[0], **kwargs)


def test_bad_inputs_are_clear_errors():
    model = small_cpvae(k=3, d=2)
    x, _ = clustered_images(20)
    with pytest.raises(ValueError, match="MixtureOfGaussiansPrior"):
        initialize_from_gmm(small_cpvae("vampprior", k=3, d=2), x)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        initialize_from_gmm(model, bad)
    with pytest.raises(ValueError, match="at least K = 3"):
        initialize_from_gmm(model, x[:2])
    with pytest.raises(ValueError, match="fit_codes=2"):
        initialize_from_gmm(model, x, fit_codes=2)
    with pytest.raises(ValueError):
        initialize_from_gmm(model, x[..., 0])                  # no channel axis
    with pytest.raises(ValueError, match="epoch"):
        GMMInitialisation(x, 0)


def test_the_callback_initialises_once_after_its_epoch():
    model = small_cpvae(k=3, d=2)
    model.compile(keras.optimizers.Adam(1e-3))
    x, _ = clustered_images(64)
    calls = []

    class Spy(GMMInitialisation):
        def on_epoch_end(self, epoch, logs=None):
            before = self.result
            super().on_epoch_end(epoch, logs)
            if self.result is not before:
                calls.append(epoch)

    spy = Spy(x, 2, verbose=False, n_init=1)
    model.fit(x, batch_size=16, epochs=3, verbose=0, callbacks=[spy])
    assert calls == [1]
    assert spy.result is not None and 0.0 <= spy.result["agreement"] <= 1.0


def _flags(run_dir, *extra):
    return ["--dataset", "digits", "--model", "cpvae", "--prior", "mog", "--components", "3",
            "--architecture", "gated", "--hidden-units", "16", "--latent-dim", "2",
            "--epochs", "2", "--batch-size", "128", "--nll-samples", "5", "--nll-examples", "20",
            "--no-export", "--verbose", "0", "--run-dir", str(run_dir), *extra]


def test_the_train_cli_records_the_initialisation(tmp_path):
    assert train_cli.main(_flags(tmp_path / "run", "--cpvae-gmm-init-epoch", "1")) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["gmm_init"]["weights"]) == 3
    assert 0.0 <= metrics["gmm_init"]["agreement"] <= 1.0


@pytest.mark.parametrize("extra, message", [
    (["--model", "vae"], "--model cpvae --prior mog"),
    (["--prior", "vampprior"], "--model cpvae --prior mog"),
    (["--epochs", "1", "--cpvae-gmm-init-epoch", "2"], "<= --epochs"),
    (["--cpvae-gmm-init-epoch", "-1"], "cpvae_gmm_init_epoch"),
    (["--strategy", "mirrored"], "default strategy"),
    (["--cpvae-gmm-restarts", "0"], "cpvae_gmm_restarts"),
    (["--cpvae-gmm-fit-codes", "-1"], "cpvae_gmm_fit_codes"),
])
def test_inconsistent_flags_are_clear_errors(tmp_path, extra, message):
    flags = _flags(tmp_path / "run", "--cpvae-gmm-init-epoch", "1") + extra
    with pytest.raises(ValueError, match=message):
        parse_config(build_parser("t"), flags)


def test_the_flags_reach_the_initialisation(tmp_path):
    config = parse_config(build_parser("t"), _flags(
        tmp_path / "run", "--cpvae-gmm-init-epoch", "2", "--cpvae-gmm-mixture", "dirichlet_process",
        "--cpvae-gmm-restarts", "1", "--cpvae-gmm-fit-codes", "500"))
    [callback] = gmm_init_callbacks(config, clustered_images(20)[0])
    assert callback.epoch == 2
    assert callback.options == {"covariance_type": "diag", "mixture": "dirichlet_process",
                                "seed": config["seed"], "n_init": 1, "fit_codes": 500}
    default = parse_config(build_parser("t"), _flags(tmp_path / "run", "--cpvae-gmm-init-epoch", "1"))
    [callback] = gmm_init_callbacks(default, clustered_images(20)[0])
    assert callback.options["n_init"] == 3 and callback.options["fit_codes"] is None
