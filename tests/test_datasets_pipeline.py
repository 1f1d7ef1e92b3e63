"""Tests for `make_dataset`: batching, shuffling, dynamic and static binarization, errors."""

import numpy as np
import pytest
import tensorflow as tf

from tfpriors.datasets.mnist import fixed_binarize
from tfpriors.datasets.pipeline import check_images, make_dataset


def _images(n=40, seed=0, shape=(4, 4, 1)):
    return np.random.default_rng(seed).uniform(size=(n,) + shape).astype(np.float32)


def _epoch(ds):
    batches = list(ds.as_numpy_iterator())
    if isinstance(batches[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*batches))
    return np.concatenate(batches)


def test_no_binarization_keeps_values_and_order_without_shuffle():
    x = _images()
    ds = make_dataset(x, 16, shuffle=False)
    batches = list(ds.as_numpy_iterator())
    assert [b.shape[0] for b in batches] == [16, 16, 8]
    np.testing.assert_array_equal(np.concatenate(batches), x)
    assert ds.element_spec.dtype == tf.float32
    dropped = make_dataset(x, 16, drop_remainder=True)
    assert [b.shape[0] for b in dropped.as_numpy_iterator()] == [16, 16]


def test_shuffle_permutes_differently_each_epoch_and_reproducibly():
    x = np.arange(50, dtype=np.float32).reshape(50, 1, 1, 1)
    ds = make_dataset(x, 10, seed=3)
    e1, e2 = _epoch(ds).ravel(), _epoch(ds).ravel()
    np.testing.assert_array_equal(np.sort(e1), x.ravel())
    np.testing.assert_array_equal(np.sort(e2), x.ravel())
    assert not np.array_equal(e1, e2) and not np.array_equal(e1, x.ravel())
    np.testing.assert_array_equal(_epoch(make_dataset(x, 10, seed=3)).ravel(), e1)
    assert not np.array_equal(_epoch(make_dataset(x, 10, seed=4)).ravel(), e1)


def test_dynamic_binarization_resamples_every_epoch_reproducibly():
    x = _images(60)
    ds = make_dataset(x, 16, binarization="dynamic", shuffle=False, seed=1)
    e1, e2 = _epoch(ds), _epoch(ds)
    assert set(np.unique(e1)) == {0.0, 1.0} and e1.dtype == np.float32
    assert not np.array_equal(e1, e2)
    assert np.mean(e1 != e2) > 0.2          # E|b1 - b2| = 2 E[p (1 - p)] = 1/3 for p ~ U(0, 1)
    # A fresh data set with the same seed repeats the same sequence of epochs.
    again = make_dataset(x, 16, binarization="dynamic", shuffle=False, seed=1)
    np.testing.assert_array_equal(_epoch(again), e1)
    np.testing.assert_array_equal(_epoch(again), e2)
    other = make_dataset(x, 16, binarization="dynamic", shuffle=False, seed=2)
    assert not np.array_equal(_epoch(other), e1)


def test_dynamic_binarization_is_bernoulli_with_the_pixel_probabilities():
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0], np.float32)
    x = np.broadcast_to(p.reshape(1, 1, 5, 1), (400, 1, 5, 1)).copy()
    ds = make_dataset(x, 100, binarization="dynamic", seed=0)
    draws = np.concatenate([_epoch(ds) for _ in range(5)])          # [2000, 1, 5, 1]
    freq = draws.mean(axis=(0, 1, 3))
    assert freq[0] == 0.0 and freq[-1] == 1.0
    np.testing.assert_allclose(freq, p, atol=0.034)      # 3 sd of 2000 draws at p = 0.5


def test_static_binarization_is_fixed_and_equals_fixed_binarize():
    x = _images(30)
    ds = make_dataset(x, 8, binarization="static", shuffle=False, seed=5)
    e1, e2 = _epoch(ds), _epoch(ds)
    np.testing.assert_array_equal(e1, e2)
    assert set(np.unique(e1)) == {0.0, 1.0}
    np.testing.assert_array_equal(e1, fixed_binarize(x, seed=5).astype(np.float32))
    # Shuffling reorders the same fixed bits.
    shuffled = _epoch(make_dataset(x, 8, binarization="static", seed=5))
    np.testing.assert_array_equal(np.sort(shuffled.reshape(30, -1), 0),
                                  np.sort(e1.reshape(30, -1), 0))


def test_labels_stay_aligned_with_shuffled_binarized_images():
    labels = np.arange(64) % 2
    x = np.broadcast_to(labels.reshape(64, 1, 1, 1), (64, 3, 3, 1)).astype(np.float32)
    for binarization in (None, "dynamic", "static"):
        xb, yb = _epoch(make_dataset(x, 10, binarization=binarization, labels=labels, seed=2))
        np.testing.assert_array_equal(xb[:, 0, 0, 0], yb)           # p in {0, 1}: bits = labels
        assert not np.array_equal(yb, labels)                      # shuffled


def test_uint8_images_are_scaled():
    x = np.array([0, 255, 51], np.uint8).reshape(3, 1, 1, 1)
    out = _epoch(make_dataset(x, 3, shuffle=False))
    np.testing.assert_allclose(out.ravel(), [0.0, 1.0, 0.2], rtol=1e-6)


@pytest.mark.parametrize("binarization", [None, "dynamic", "static"])
def test_autotuning_is_off_so_iterators_are_deleted_at_once(binarization):
    """With tf.data autotuning on, deleting an iterator can wait for the autotune thread's next
    wake-up (up to seconds; see the module docstring). Every pipeline must switch it off."""
    ds = make_dataset(_images(), 8, binarization=binarization)
    assert ds.options().autotune.enabled is False
    assert ds.repeat().options().autotune.enabled is False      # options survive later stages


def test_errors():
    x = _images(8)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\].*Received shape \[8, 4, 4\]"):
        make_dataset(x[..., 0], 4)
    bad = x.copy()
    bad[2, 1, 1, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        make_dataset(bad, 4)
    bad[2, 1, 1, 0] = np.inf
    with pytest.raises(ValueError, match="finite"):
        make_dataset(bad, 4)
    for batch_size in (0, -2, 1.5):
        with pytest.raises(ValueError, match="batch_size"):
            make_dataset(x, batch_size)
    with pytest.raises(ValueError, match="binarization"):
        make_dataset(x, 4, binarization="fixed")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make_dataset(x * 2, 4, binarization="dynamic")
    with pytest.raises(ValueError, match="labels"):
        make_dataset(x, 4, labels=np.zeros(7))
    with pytest.raises(ValueError, match="numeric"):
        check_images("images", np.array(["a"]).reshape(1, 1, 1, 1))
