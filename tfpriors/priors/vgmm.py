"""LaDDer's hyper prior p(t): a variational Dirichlet-process GMM (Lin & Clark 2020, Sec. 3.2-3.3).

The layer holds the variational parameters xi of a truncated DP mixture of full-covariance
Gaussians (`tfpriors.distributions.VariationalGaussianMixture`) in non-trainable weights, so the
fitted hyper prior is saved in `.keras` files and checkpoints and exported with the model. It is
not trained by gradients: in LaDDer's block coordinate ascent, xi maximises the variational bound
L(t; xi) of Eq. (6) on the current encodings t, which scikit-learn's `BayesianGaussianMixture`
(weight_concentration_prior_type="dirichlet_process", covariance_type="full") does by
coordinate ascent (mean-field VI). The generative model of the paper: w ~ Beta(1, alpha_0)
stick breaks, mu_m ~ N(0, I / kappa_0), Sigma_m^-1 ~ W(I, nu_0 = D).

Two kinds of fits (`fit`):

* fast (`accurate=False`): a warm start from the current parameters, `fast_max_iter` VI
  iterations over the active components: the hyper prior follows the moving encodings;
* accurate (`accurate=True`): a fresh fit of all `max_components` components (k-means
  initialisation, `accurate_max_iter` iterations), then pruning: components whose expected
  weight E[w_m] is below `prune_threshold` are removed and the rest refitted from a warm start,
  so the stick-breaking weights are those of the kept components.

The layer starts as the uninformative unit Gaussian of Sec. 3.3: one active component N(0, I).
"""

import warnings

import keras
import numpy as np
import tensorflow as tf

from tfpriors._validation import check_finite_array, check_positive_float, check_positive_int
from tfpriors.distributions.vgmm import VariationalGaussianMixture
from tfpriors.priors.base import PriorLayer

__all__ = ["VGMMHyperPrior"]


def _precision_cholesky(covariances):
    """scikit-learn's `precisions_cholesky_` of full covariances: inv(chol(cov)).T per component."""
    chol = np.linalg.cholesky(covariances)                                      # [M, D, D]
    eye = np.eye(covariances.shape[-1])
    return np.stack([np.linalg.solve(c, eye).T for c in chol])


@keras.saving.register_keras_serializable(package="tfpriors")
class VGMMHyperPrior(PriorLayer):
    """A variational DP-GMM over t, fitted by scikit-learn and held in TF weights.

    Args:
      latent_dim: D, the dimension of t.
      max_components: M, the truncation level of the Dirichlet process.
      weight_concentration_prior: alpha_0 of the stick breaks Beta(1, alpha_0); None: 1 / M
        (scikit-learn's default).
      mean_precision_prior: kappa_0 of mu_m ~ N(0, I / kappa_0) (the paper: 1).
      fast_max_iter: VI iterations of a fast (warm-started) fit.
      accurate_max_iter: VI iterations of an accurate (fresh) fit.
      prune_threshold: after an accurate fit, components with E[w_m] below this are removed.
      reg_covar: added to the covariances' diagonals (scikit-learn's reg_covar).

    Raises:
      ValueError: for a non-positive dimension, M, iteration count or prior parameter, or a
        prune threshold outside [0, 1).
    """

    def __init__(self, latent_dim, max_components=50, weight_concentration_prior=None,
                 mean_precision_prior=1.0, fast_max_iter=20, accurate_max_iter=500,
                 prune_threshold=1e-3, reg_covar=1e-6, **kwargs):
        super().__init__(latent_dim, **kwargs)
        self.max_components = check_positive_int("max_components", max_components)
        self.weight_concentration_prior = (
            None if weight_concentration_prior is None
            else check_positive_float("weight_concentration_prior", weight_concentration_prior))
        self.mean_precision_prior = check_positive_float("mean_precision_prior",
                                                         mean_precision_prior)
        self.fast_max_iter = check_positive_int("fast_max_iter", fast_max_iter)
        self.accurate_max_iter = check_positive_int("accurate_max_iter", accurate_max_iter)
        self.prune_threshold = float(prune_threshold)
        if not 0.0 <= self.prune_threshold < 1.0:
            raise ValueError(f"Expected 0 <= `prune_threshold` < 1. Received: "
                             f"prune_threshold={prune_threshold!r}")
        self.reg_covar = check_positive_float("reg_covar", reg_covar)

    def build(self, input_shape=None):
        m, d = self.max_components, self.latent_dim
        state = dict(trainable=False, aggregation="only_first_replica")
        self.weight_concentration = self.add_weight(name="weight_concentration", shape=(2, m),
                                                    initializer="ones", **state)
        self.mean_precision = self.add_weight(name="mean_precision", shape=(m,),
                                              initializer="ones", **state)
        self.means = self.add_weight(name="means", shape=(m, d), initializer="zeros", **state)
        self.degrees_of_freedom = self.add_weight(
            name="degrees_of_freedom", shape=(m,), initializer=keras.initializers.Constant(float(d)),
            **state)
        eye = np.broadcast_to(np.eye(d, dtype=np.float32), (m, d, d))
        self.covariances = self.add_weight(name="covariances", shape=(m, d, d),
                                           initializer=keras.initializers.Constant(eye), **state)
        active = np.zeros(m, np.float32)
        active[0] = 1.0
        self.active = self.add_weight(name="active", shape=(m,),
                                      initializer=keras.initializers.Constant(active), **state)
        self.fits = self.add_weight(name="fits", shape=(), dtype="int64", initializer="zeros",
                                    **state)
        self.built = True

    # ------------------------------------------------------------------ the distribution
    def distribution(self, encoder=None):
        """The VariationalGaussianMixture p(t) of the current parameters (event shape [D])."""
        return VariationalGaussianMixture(
            self.weight_concentration, self.mean_precision, self.means, self.degrees_of_freedom,
            self.covariances, active=tf.convert_to_tensor(self.active) > 0.5)

    @property
    def num_active(self):
        """How many components are active (not pruned)."""
        return int(np.sum(keras.ops.convert_to_numpy(self.active) > 0.5))

    # ------------------------------------------------------------------ fitting (Eq. 6)
    def _new_mixture(self, n_components, max_iter, seed, warm):
        from sklearn.mixture import BayesianGaussianMixture
        alpha0 = (1.0 / self.max_components if self.weight_concentration_prior is None
                  else self.weight_concentration_prior)
        return BayesianGaussianMixture(
            n_components=n_components, covariance_type="full",
            weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=alpha0, mean_precision_prior=self.mean_precision_prior,
            mean_prior=np.zeros(self.latent_dim), degrees_of_freedom_prior=float(self.latent_dim),
            covariance_prior=np.eye(self.latent_dim), max_iter=max_iter, reg_covar=self.reg_covar,
            init_params="kmeans", random_state=int(seed), warm_start=warm)

    def to_sklearn(self, max_iter=None, seed=0):
        """A warm-startable `BayesianGaussianMixture` holding the active components' parameters.

        Its `fit` continues VI from the layer's parameters (scikit-learn's warm_start).
        """
        if not self.built:
            self.build()
        keep = keras.ops.convert_to_numpy(self.active) > 0.5
        n = int(keep.sum())
        mixture = self._new_mixture(n, max_iter or self.fast_max_iter, seed, warm=True)
        get = lambda v: keras.ops.convert_to_numpy(v).astype(np.float64)  # noqa: E731
        gamma = get(self.weight_concentration)[:, keep]
        mixture.weight_concentration_ = (gamma[0], gamma[1])
        mixture.mean_precision_ = get(self.mean_precision)[keep]
        mixture.means_ = get(self.means)[keep]
        mixture.degrees_of_freedom_ = get(self.degrees_of_freedom)[keep]
        mixture.covariances_ = get(self.covariances)[keep]
        mixture.precisions_cholesky_ = _precision_cholesky(mixture.covariances_)
        mixture.precisions_ = np.linalg.inv(mixture.covariances_)
        mixture.converged_, mixture.lower_bound_, mixture.n_iter_ = False, -np.inf, 0
        mixture.n_features_in_ = self.latent_dim
        return mixture

    def assign_from_sklearn(self, mixture, keep=None):
        """Writes a fitted `BayesianGaussianMixture` (dirichlet_process, full) into the weights.

        Args:
          mixture: the fitted mixture, at most `max_components` components of dimension D.
          keep: optional bool [n_components]: only these components (in order) become active.

        Raises:
          ValueError: for another weight prior type or covariance type, a wrong dimension or
            more components than `max_components`.
        """
        if not self.built:
            self.build()
        if (mixture.weight_concentration_prior_type != "dirichlet_process"
                or mixture.covariance_type != "full"):
            raise ValueError(f"Expected a dirichlet_process mixture with full covariances. Received: "
                             f"{mixture.weight_concentration_prior_type}, {mixture.covariance_type}")
        keep = np.ones(len(mixture.means_), bool) if keep is None else np.asarray(keep, bool)
        n, (m, d) = int(keep.sum()), (self.max_components, self.latent_dim)
        if mixture.means_.shape[1] != d or n > m or n < 1:
            raise ValueError(f"Expected 1 to {m} components of dimension {d}. Received: {n} of "
                             f"dimension {mixture.means_.shape[1]}")
        gamma = np.ones((2, m))
        gamma[:, :n] = np.stack(mixture.weight_concentration_)[:, keep]
        values = {"weight_concentration": gamma,
                  "mean_precision": np.ones(m), "means": np.zeros((m, d)),
                  "degrees_of_freedom": np.full(m, float(d)),
                  "covariances": np.broadcast_to(np.eye(d), (m, d, d)).copy(),
                  "active": (np.arange(m) < n).astype(float)}
        values["mean_precision"][:n] = mixture.mean_precision_[keep]
        values["means"][:n] = mixture.means_[keep]
        values["degrees_of_freedom"][:n] = mixture.degrees_of_freedom_[keep]
        values["covariances"][:n] = mixture.covariances_[keep]
        for name, value in values.items():
            getattr(self, name).assign(value.astype(np.float32))

    def fit(self, t, accurate=False, seed=0):
        """Fits the variational parameters to encodings t (maximises Eq. 6) and stores them.

        Args:
          t: array [N, D] of hyper-latent encodings, N >= 2, finite.
          accurate: False: a fast warm-started fit; True: a fresh fit of every component, then
            pruning (module docstring).
          seed: random_state of the k-means initialisation.

        Returns:
          the fitted `BayesianGaussianMixture`.

        Raises:
          ValueError: for t of the wrong shape, with fewer than 2 rows, or non-finite values.
        """
        t = np.asarray(t, np.float64)
        if t.ndim != 2 or t.shape[1] != self.latent_dim or len(t) < 2:
            raise ValueError(f"Expected encodings t of shape [N >= 2, {self.latent_dim}]. "
                             f"Received: {t.shape}")
        check_finite_array("t", t)
        from sklearn.exceptions import ConvergenceWarning
        with warnings.catch_warnings():
            # A fast fit stops early by design; an accurate one reports through n_iter_.
            warnings.simplefilter("ignore", ConvergenceWarning)
            if not accurate:
                mixture = self.to_sklearn(seed=seed).fit(t)
                self.assign_from_sklearn(mixture)
                self.fits.assign_add(1)
                return mixture
            n_components = min(self.max_components, len(t))
            mixture = self._new_mixture(n_components, self.accurate_max_iter, seed,
                                        warm=False).fit(t)
            keep = mixture.weights_ >= self.prune_threshold
            if not keep.all():
                self.assign_from_sklearn(mixture, keep)
                mixture = self.to_sklearn(max_iter=self.fast_max_iter, seed=seed).fit(t)
            self.assign_from_sklearn(mixture)
        self.fits.assign_add(1)
        return mixture

    def get_config(self):
        config = super().get_config()
        config.update(max_components=self.max_components,
                      weight_concentration_prior=self.weight_concentration_prior,
                      mean_precision_prior=self.mean_precision_prior,
                      fast_max_iter=self.fast_max_iter, accurate_max_iter=self.accurate_max_iter,
                      prune_threshold=self.prune_threshold, reg_covar=self.reg_covar)
        return config

