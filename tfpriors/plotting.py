"""PNG figures of a trained model: latent space with the prior, training curves, images.

All functions write a PNG with matplotlib's Agg backend (no display needed) and return the path.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ["plot_latent_space", "plot_training_curves", "training_curves_figure", "plot_image_grid",
           "plot_reconstructions"]


def _project(z, basis=None):
    """Projects latents [N, D] to 2-D: identity for D <= 2, else onto the top-2 principal axes."""
    z = np.asarray(z, np.float64)
    if z.shape[1] == 1:
        return np.concatenate([z, np.zeros_like(z)], 1), None
    if z.shape[1] == 2:
        return z, None
    if basis is None:
        centred = z - z.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        basis = (z.mean(0), vt[:2].T)
    return (z - basis[0]) @ basis[1], basis


def plot_latent_space(path, means, labels, prior_samples=None, prior_log_prob=None,
                      label_name="label", cyclic=False):
    """Posterior means coloured by label over the prior (density contours for D = 2, else samples).

    Args:
      path: output PNG path.
      means: posterior means [N, D].
      labels: [N] labels (class ids or continuous values, e.g. the pendulum angle).
      prior_samples: optional [M, D] samples from p(z), drawn as grey dots.
      prior_log_prob: optional callable z [G, 2] -> log p(z) [G], drawn as filled log-density
        contours when D = 2.
      cyclic: use a cyclic colour map (angles).
    """
    xy, basis = _project(means)
    fig, ax = plt.subplots(figsize=(6, 5))
    if prior_log_prob is not None and np.shape(means)[1] == 2:
        lo, hi = xy.min(0), xy.max(0)
        pad = 0.25 * (hi - lo) + 1e-3
        gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], 120),
                             np.linspace(lo[1] - pad[1], hi[1] + pad[1], 120))
        grid = np.stack([gx.ravel(), gy.ravel()], 1).astype("float32")
        # log-density, floored 12 nats below its peak: a peaked prior (VampPrior) stays visible.
        log_density = np.asarray(prior_log_prob(grid), np.float64).reshape(gx.shape)
        log_density = np.maximum(log_density, np.nanmax(log_density) - 12.0)
        filled = ax.contourf(gx, gy, log_density, levels=20, cmap="Greys", alpha=0.7)
        fig.colorbar(filled, ax=ax, label="log p(z)")
    elif prior_samples is not None:
        sxy, _ = _project(prior_samples, basis)
        ax.scatter(sxy[:, 0], sxy[:, 1], s=2, c="0.6", alpha=0.5, label="prior samples")
        ax.legend(loc="upper right")
    sc = ax.scatter(xy[:, 0], xy[:, 1], s=3, c=labels, cmap="twilight" if cyclic else "tab10")
    fig.colorbar(sc, ax=ax, label=label_name)
    ax.set_title("posterior means" + (" (PCA projection)" if basis is not None else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# Panel title and y-axis label of the metrics trainers.VAE logs; other keys get their own name.
_CURVE_LABELS = {
    "loss": ("loss, −(β-weighted bound)", "nats per example"),
    "reconstruction": ("reconstruction, −E log p(x|z)", "nats per example"),
    "kl": ("kl, KL(q(z|x) ‖ p(z))", "nats per example"),
    "elbo": ("elbo (β = 1)", "nats per example"),
    "constraint": ("constraint C", "squared error per pixel"),
    "constraint_average": ("constraint_average Ĉ", "squared error per pixel"),
    "beta": ("beta β", "β"),
    "prior_gate": ("prior_gate (REWO phase)", "0 initial, 1 main"),
    "log_gamma": ("log_gamma, β = 1 / (1 + τγ)", "log γ"),
}
# Fixed y ranges: the phase flag reads as 0/1 whatever the run.
_CURVE_LIMITS = {"prior_gate": (-0.1, 1.1)}
# β-controller state: the same in validation as after the epoch's last step, so no val_ curve.
_CONTROLLER_STATE = ("beta", "beta_last", "constraint_average", "prior_gate", "log_gamma")
_CURVE_COLUMNS = 4


def _spans_decades(values, decades=2.0):
    """True for finite positive values whose max/min ratio reaches 10**decades."""
    return values.size > 0 and values.min() > 0 and np.log10(values.max() / values.min()) >= decades


def _set_y_range(ax, key, values):
    """Log axis for values spanning decades; a flat series gets a ±5% range, not its float noise."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if key in _CURVE_LIMITS:
        ax.set_ylim(*_CURVE_LIMITS[key])
    elif _spans_decades(values):
        ax.set_yscale("log")
    elif values.size and np.ptp(values) <= 1e-6 * np.max(np.abs(values)):
        centre = float(np.mean(values))
        pad = 0.05 * abs(centre) or 0.05
        ax.set_ylim(centre - pad, centre + pad)


def _curves(history, key):
    """(label, values, line style) of the curves drawn in `key`'s panel."""
    if key == "beta" and "beta_last" in history:
        return [("epoch mean", history["beta"], "-"), ("last step", history["beta_last"], "--")]
    curves = [("train", history[key], "-")]
    if "val_" + key in history and key not in _CONTROLLER_STATE:
        curves.append(("validation", history["val_" + key], "-"))
    return curves


def training_curves_figure(history):
    """The matplotlib figure of `plot_training_curves`: a grid of up to 4 panels per row.

    One panel per metric (train and validation curves where both exist; β as its epoch mean and
    its last-step value), x axis the epoch (1-based, as Keras prints it), log y axis for positive
    series spanning two or more decades (GECO's β falls to 1e-33), a ±5% y range for a flat
    series and 0/1 for the REWO phase. The caller closes the figure.
    """
    order = {key: i for i, key in enumerate(_CURVE_LABELS)}
    keys = sorted((k for k in history if not k.startswith("val_") and k != "beta_last"),
                  key=lambda k: order.get(k, len(order)))
    if not keys:
        raise ValueError(f"Expected a History.history dict with at least one training metric. "
                         f"Received keys {sorted(history)}")
    columns = min(_CURVE_COLUMNS, len(keys))
    rows = int(np.ceil(len(keys) / columns))
    style = {"axes.formatter.useoffset": False, "axes.grid": True, "grid.alpha": 0.3,
             "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8}
    with plt.rc_context(style):
        fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows + 0.4),
                                 squeeze=False)
        for ax in axes.ravel()[len(keys):]:
            ax.set_visible(False)
        for ax, key in zip(axes.ravel(), keys):
            title, unit = _CURVE_LABELS.get(key, (key, ""))
            curves = _curves(history, key)
            for label, values, line in curves:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, line, label=label, marker="o" if len(values) <= 30 else None,
                        markersize=3)
            _set_y_range(ax, key, np.concatenate([np.ravel(v) for _, v, _ in curves]))
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.set_ylabel(unit)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if len(curves) > 1:
                ax.legend()
        fig.suptitle(f"training curves ({len(history[keys[0]])} epochs)")
        fig.tight_layout()
    return fig


def plot_training_curves(path, history):
    """A grid of training curves from a Keras History.history dict (`training_curves_figure`)."""
    fig = training_curves_figure(history)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_image_grid(path, images, title="", columns=10):
    """A grid of images [N, H, W, C] with values in [0, 1]."""
    images = np.clip(np.asarray(images), 0, 1)
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.9, rows * 0.9 + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img in zip(axes.ravel(), images):
        ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_reconstructions(path, originals, reconstructions, columns=10):
    """Originals (odd rows) above their reconstructions (even rows)."""
    n = min(len(originals), columns * 2)
    pairs = []
    for start in range(0, n, columns):
        pairs.extend(originals[start:start + columns])
        pairs.extend(reconstructions[start:start + columns])
    return plot_image_grid(path, np.stack(pairs), "originals / reconstructions", columns)
