"""A Gaussian-mixture initialisation of the CP-VAE's clusters, after a short pretraining.

The CP-VAE's categories start where its random initialisation puts them: during the KL warm-up
the decoder can reconstruct from z alone, and q(c|x) typically falls to one category before the
KL term makes c worth using (measured on MNIST: benchmarks/README.md). Clustering VAEs with a
mixture prior are therefore usually started from a mixture fitted to a pretrained encoder's codes
(VaDE: Jiang et al. 2017, Sec. 3.3; the CP-VAE paper, Lavda et al., does not say how it starts).
`initialize_from_gmm` does that for the CP-VAE after `epoch` epochs of its own training:

  1. encode the images: m_n = E q(z|x_n), the posterior means (with the paper's head, q(z|x) is
     one Gaussian whatever c);
  2. fit a K-component Gaussian mixture to {m_n} by EM (scikit-learn's GaussianMixture, `n_init`
     restarts) or, with mixture="dirichlet_process", by variational inference for a
     Dirichlet-process mixture truncated at K (BayesianGaussianMixture, as LaDDer's hyper prior),
     which leaves the components the codes do not need with weight ~0: weights w_k, means mu_k,
     covariances S_k;
  3. p(z|c_k) <- N(mu_k, S_k), and p(c) <- w if the prior learns its weights (a prior with
     diagonal covariances keeps the diagonal of a full S_k; `MixtureOfGaussiansPrior.
     assign_components`);
  4. q(c|x) <- the mixture's responsibilities r_nk = p(k|m_n): the cluster head (one dense layer on
     h(x)) is fitted to them by cross-entropy, sum_n sum_k -r_nk log pi_k(x_n), with Adam; h(x)
     and everything else stay as trained.

Training then continues with the full objective. The mixture prior must be the MoG prior
(`MixtureOfGaussiansPrior`: free means and scales); a VampPrior's components are posteriors of
pseudo-inputs, which a fitted mixture cannot set.
"""

import inspect

import keras
import numpy as np
import tensorflow as tf

from tfpriors._validation import (check_finite_array, check_non_negative_int, check_positive_float,
                                  check_positive_int)
from tfpriors.priors import MixtureOfGaussiansPrior

__all__ = ["initialize_from_gmm", "GMMInitialisation"]

COVARIANCE_TYPES = ("diag", "full")
MIXTURES = ("em", "dirichlet_process")


def _check_options(covariance_type, n_init, head_epochs, batch_size, learning_rate, mixture,
                   fit_codes):
    """The options of `initialize_from_gmm`, checked: (n_init, head_epochs, batch_size,
    learning_rate, fit_codes)."""
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"Expected `covariance_type` one of {COVARIANCE_TYPES}. "
                         f"Received: {covariance_type!r}")
    if mixture not in MIXTURES:
        raise ValueError(f"Expected `mixture` one of {MIXTURES}. Received: {mixture!r}")
    return (check_positive_int("n_init", n_init), check_positive_int("head_epochs", head_epochs),
            check_positive_int("batch_size", batch_size),
            check_positive_float("learning_rate", learning_rate),
            None if fit_codes is None else check_positive_int("fit_codes", fit_codes))


def _in_batches(fn, images, batch_size):
    return np.concatenate([np.asarray(fn(tf.constant(images[i:i + batch_size])))
                           for i in range(0, len(images), batch_size)])


def _fit_mixture(codes, k, mixture, covariance_type, n_init, seed):
    """The K-component mixture of `codes` [N, D]: EM (GaussianMixture) or variational inference
    for a Dirichlet-process mixture truncated at K (BayesianGaussianMixture, concentration 1/K),
    whose weights fall to ~0 on the components the codes do not need."""
    from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
    if mixture == "em":
        return GaussianMixture(k, covariance_type=covariance_type, n_init=n_init,
                               random_state=seed, reg_covar=1e-6).fit(codes)
    return BayesianGaussianMixture(
        n_components=k, covariance_type=covariance_type, n_init=n_init, random_state=seed,
        weight_concentration_prior_type="dirichlet_process", weight_concentration_prior=1.0 / k,
        reg_covar=1e-6, max_iter=500).fit(codes)


def initialize_from_gmm(model, images, covariance_type="diag", n_init=3, head_epochs=5,
                        batch_size=500, learning_rate=1e-3, seed=0, mixture="em", fit_codes=None):
    """Sets the CP-VAE's p(z|c), p(c) and q(c|x) from a Gaussian mixture fitted to its encodings.

    Args:
      model: a built `CPVAE` whose prior is a `MixtureOfGaussiansPrior` with K components.
      images: [N, H, W, C] training images (binarized as the model sees them), N >= K.
      covariance_type: "diag" or "full" covariances for the fit (a prior with diagonal
        covariances keeps the diagonal; one with covariance="full" takes S_k whole).
      n_init: EM restarts; the best log-likelihood is kept.
      head_epochs: passes over the images fitting the cluster head to the responsibilities.
      batch_size: images per encoder call and per head step.
      learning_rate: Adam's step size for the head.
      seed: the EM initialisation and the head's shuffling.
      mixture: "em", a maximum-likelihood GMM, or "dirichlet_process", a variational DP-GMM
        truncated at K whose unneeded components get weight ~0 (p(c) takes the weights only if
        the prior learns them: MixtureOfGaussiansPrior(learn_weights=True)).
      fit_codes: None, or fit the mixture to at most this many codes drawn without replacement
        (seed `seed`); the responsibilities are still those of every image. The variational
        DP fit costs O(N K) per iteration and needs many iterations at large K (K = 150 on
        50,000 codes takes minutes per restart), so large-K runs fit a subsample.

    Returns:
      {"weights": w [K], "mean_log_likelihood": the mixture's mean log density of the codes,
       "head_cross_entropy": the last epoch's mean cross-entropy, "agreement": the fraction of
       images whose argmax q(c|x) is the mixture's most responsible component}.
    """
    if not isinstance(getattr(model, "prior", None), MixtureOfGaussiansPrior) or \
            not callable(getattr(model, "cluster_logits", None)):
        raise ValueError(f"Expected a CP-VAE with a MixtureOfGaussiansPrior (free means and "
                         f"scales for p(z|c)). Received: {type(model).__name__} with "
                         f"{type(getattr(model, 'prior', None)).__name__}")
    n_init, head_epochs, batch_size, learning_rate, fit_codes = _check_options(
        covariance_type, n_init, head_epochs, batch_size, learning_rate, mixture, fit_codes)
    images = check_finite_array("images", np.asarray(images, np.float32))
    model._check_shape((None,) + images.shape[1:])
    k = model.num_clusters
    if min(len(images), fit_codes or len(images)) < k:
        raise ValueError(f"Expected at least K = {k} images (and `fit_codes` >= K) to fit {k} "
                         f"mixture components. Received: {len(images)} images, "
                         f"fit_codes={fit_codes}")

    codes = _in_batches(lambda x: model.posterior(x).mean(), images, batch_size)      # [N, D]
    fitted = codes if fit_codes is None or fit_codes >= len(codes) else \
        codes[np.random.default_rng(seed).choice(len(codes), fit_codes, replace=False)]
    gmm = _fit_mixture(fitted, k, mixture, covariance_type, n_init, seed)
    covariances = np.stack([np.diag(c) for c in gmm.covariances_]) \
        if covariance_type == "diag" else gmm.covariances_                             # [K, D, D]
    model.prior.assign_components(gmm.means_, covariances, gmm.weights_)

    features = _in_batches(model.features, images, batch_size)                       # [N, F]
    responsibilities = gmm.predict_proba(codes).astype(np.float32)                    # [N, K]
    head = model.cluster_head
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step(h, r):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(r, head(h)))
        optimizer.apply_gradients(zip(tape.gradient(loss, head.trainable_variables),
                                      head.trainable_variables))
        return loss

    rng = np.random.default_rng(seed)
    for _ in range(head_epochs):
        order = rng.permutation(len(features))
        losses = [float(step(tf.constant(features[order[i:i + batch_size]]),
                             tf.constant(responsibilities[order[i:i + batch_size]])))
                  for i in range(0, len(order), batch_size)]
    predicted = np.argmax(_in_batches(head, features, batch_size), axis=-1)
    return {"weights": gmm.weights_.tolist(), "mean_log_likelihood": float(gmm.score(codes)),
            "head_cross_entropy": float(np.mean(losses)),
            "agreement": float(np.mean(predicted == responsibilities.argmax(-1)))}


_INITIALIZE_SIGNATURE = inspect.signature(initialize_from_gmm)
_OPTION_NAMES = tuple(inspect.signature(_check_options).parameters)


class GMMInitialisation(keras.callbacks.Callback):
    """Calls `initialize_from_gmm(model, images, **options)` once, at the end of epoch `epoch`
    (1-based: after `epoch` epochs of training). Place it before BackupAndRestore in the callback
    list, so that the backup of that epoch holds the initialised model and a resumed run, which
    starts after it, does not initialise again. The result is kept in `self.result` (None until
    then, and in a run resumed after that epoch)."""

    def __init__(self, images, epoch, verbose=True, **options):
        super().__init__()
        self.images = check_finite_array("images", np.asarray(images, np.float32))
        self.epoch = check_positive_int("epoch", epoch)
        # Checked now, not at epoch `epoch`: the options bound to initialize_from_gmm's signature
        # (a TypeError for an unknown one), its defaults filled in.
        bound = _INITIALIZE_SIGNATURE.bind(None, None, **options)
        bound.apply_defaults()
        _check_options(*(bound.arguments[name] for name in _OPTION_NAMES))
        self.options, self.verbose, self.result = options, bool(verbose), None

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 != self.epoch:
            return
        self.result = initialize_from_gmm(self.model, self.images, **self.options)
        if self.verbose:
            used = sum(w > 1.0 / (100 * len(self.result["weights"])) for w in self.result["weights"])
            print(f"GMM initialisation after epoch {self.epoch}: {used} components with weight, "
                  f"head agrees with the mixture on {self.result['agreement']:.3f} of the images",
                  flush=True)



def gmm_init_callbacks(config, train_images):
    """[GMMInitialisation] for a run config with --cpvae-gmm-init-epoch > 0, else []. The mixture
    is fitted to the codes of the training images binarized once (seed --seed) when the run
    binarizes its inputs, as the model sees them."""
    epoch = config.get("cpvae_gmm_init_epoch", 0)
    if not epoch:
        return []
    from tfpriors.datasets import fixed_binarize
    images = np.asarray(train_images, np.float32)
    if config.get("binarization", "none") != "none":
        images = fixed_binarize(images, seed=config["seed"]).astype(np.float32)
    return [GMMInitialisation(images, epoch, covariance_type=config.get("cpvae_gmm_covariance", "diag"),
                              mixture=config.get("cpvae_gmm_mixture", "em"), seed=config["seed"],
                              n_init=config.get("cpvae_gmm_restarts", 3),
                              fit_codes=config.get("cpvae_gmm_fit_codes") or None,
                              verbose=config.get("verbose", 1) > 0)]


def add_gmm_init_flags(group):
    """The train/tune flags of the initialisation (`trainers.config.build_parser`)."""
    group.add_argument("--cpvae-gmm-init-epoch", type=int, default=0,
                       help="cpvae: after this many epochs, fit a Gaussian mixture of --components "
                            "to the posterior means of the training images and start p(z|c) and "
                            "q(c|x) from it (trainers/cpvae_init.py, as VaDE starts its clusters); "
                            "needs --prior mog; 0: off")
    group.add_argument("--cpvae-gmm-covariance", choices=list(COVARIANCE_TYPES), default="diag",
                       help="cpvae: covariances of that mixture's fit (p(z|c) keeps their "
                            "diagonal unless --mog-covariance full)")
    group.add_argument("--cpvae-gmm-mixture", choices=list(MIXTURES), default="em",
                       help="cpvae: that mixture fitted by EM, or by variational inference for a "
                            "Dirichlet-process mixture truncated at --components, which gives the "
                            "components the codes do not need weight ~0 (p(c) takes the weights "
                            "with --learn-weights)")
    group.add_argument("--cpvae-gmm-restarts", type=int, default=3,
                       help="cpvae: restarts of that mixture's fit; the best is kept")
    group.add_argument("--cpvae-gmm-fit-codes", type=int, default=0,
                       help="cpvae: fit that mixture to at most this many training codes, drawn "
                            "at random (the Dirichlet-process fit at large --components is slow "
                            "on every code); 0: all")


def check_gmm_init_config(config):
    """Raises ValueError if --cpvae-gmm-init-epoch does not fit the rest of a run config."""
    epoch = config.get("cpvae_gmm_init_epoch", 0)
    check_non_negative_int("cpvae_gmm_init_epoch", epoch)
    check_positive_int("cpvae_gmm_restarts", config.get("cpvae_gmm_restarts", 3))
    check_non_negative_int("cpvae_gmm_fit_codes", config.get("cpvae_gmm_fit_codes", 0))
    if not epoch:
        return
    model, prior = config.get("model", "vae"), config["prior"]
    if model != "cpvae" or prior != "mog":
        raise ValueError(f"Expected --model cpvae --prior mog with --cpvae-gmm-init-epoch (it sets "
                         f"the MoG's p(z|c)). Received: --model {model} --prior {prior}")
    if config.get("strategy") not in (None, "default"):
        raise ValueError(f"Expected the default strategy with --cpvae-gmm-init-epoch (the "
                         f"initialisation fits the mixture and the cluster head in one process). "
                         f"Received: --strategy {config['strategy']}")
    if epoch > config["epochs"]:
        raise ValueError(f"Expected --cpvae-gmm-init-epoch <= --epochs ({config['epochs']}). "
                         f"Received: {epoch}")
