"""PNG figures of a trained model: latent space with the prior, training curves, images.

All functions write a PNG with matplotlib's Agg backend (no display needed) and return the path.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_latent_space", "plot_training_curves", "plot_image_grid", "plot_reconstructions"]


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


def plot_training_curves(path, history):
    """One panel per metric of a Keras History.history dict (train and val_ curves together)."""
    keys = [k for k in history if not k.startswith("val_") and k != "beta_last"]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot(history[key], label="train")
        if "val_" + key in history:
            ax.plot(history["val_" + key], label="validation")
        ax.set_title(key)
        ax.set_xlabel("epoch")
    axes[0][0].legend()
    fig.tight_layout()
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
