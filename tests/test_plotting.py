"""tfpriors.plotting's training curves: a grid of readable panels, log β when it spans decades."""

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from tfpriors.plotting import plot_training_curves, training_curves_figure

# The eight panels of a REWO run's History.history (trainers.VAE logs), 3 epochs.
_TRAIN = {"loss": [5920.9, 1640.3, 790.1], "reconstruction": [5920.8, 1640.2, 789.9],
          "kl": [1.38, 1.28, 1.59], "elbo": [-5922.2, -1641.5, -791.5],
          "constraint": [0.49, 0.16, 0.09], "constraint_average": [0.79, 0.73, 0.67],
          "beta": [0.1, 0.1, 0.1], "prior_gate": [0.0, 0.0, 1.0]}


def _history(**overrides):
    history = dict(_TRAIN, beta_last=[0.1, 0.1, 0.1], **overrides)
    history.update({"val_" + key: list(np.asarray(values) * 0.9) for key, values in history.items()})
    return history


def _panels(fig):
    """The visible axes by metric name (the first word of the panel title)."""
    return {ax.get_title().split()[0].rstrip(","): ax for ax in fig.axes if ax.get_visible()}


def _geometries(panels):
    """The (rows, columns) of the grids the panels sit in."""
    return {ax.get_subplotspec().get_gridspec().get_geometry() for ax in panels.values()}


def test_eight_metrics_make_two_rows_of_four_and_a_readable_png(tmp_path):
    fig = training_curves_figure(_history())
    try:
        panels = _panels(fig)
        assert sorted(panels) == sorted(_TRAIN)
        assert _geometries(panels) == {(2, 4)}
        assert all(ax.get_xlabel() == "epoch" for ax in panels.values())
        assert panels["reconstruction"].get_ylabel() == "nats per example"
        assert [line.get_label() for line in panels["loss"].get_lines()] == ["train", "validation"]
        assert [line.get_label() for line in panels["constraint_average"].get_lines()] == ["train"]
        beta_labels = [line.get_label() for line in panels["beta"].get_lines()]
        assert beta_labels == ["epoch mean", "last step"]
    finally:
        plt.close(fig)
    path = plot_training_curves(tmp_path / "curves.png", _history())
    height, width = matplotlib.image.imread(path).shape[:2]
    assert 0.3 < height / width < 0.7                  # one 8-panel row is 300 x 2560 (0.12)


def test_beta_spanning_decades_gets_a_log_axis_and_a_flat_beta_does_not():
    falling = list(0.1 * 10.0 ** -np.linspace(0, 32, 3))
    for beta, scale in ((falling, "log"), ([0.1, 0.1, 0.1], "linear")):
        fig = training_curves_figure(_history(beta=beta))
        try:
            assert _panels(fig)["beta"].get_yscale() == scale
            assert _panels(fig)["loss"].get_yscale() == "linear"
        finally:
            plt.close(fig)


def test_unknown_keys_keep_their_name_and_few_metrics_use_few_columns():
    fig = training_curves_figure({"loss": [2.0, 1.0], "accuracy": [0.5, 0.7], "val_loss": [2.1, 1.2]})
    try:
        panels = _panels(fig)
        assert sorted(panels) == ["accuracy", "loss"]
        assert _geometries(panels) == {(1, 2)}
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="at least one training metric"):
        training_curves_figure({"val_loss": [1.0]})
