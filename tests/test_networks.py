"""Encoders/decoders: shapes, bounded log-variance, config round trips, clear shape errors."""

import keras
import numpy as np
import pytest

from tfpriors.networks import ConvDecoder, ConvEncoder, GatedDense, MLPDecoder, MLPEncoder

SHAPE = (8, 8, 1)


@pytest.mark.parametrize("enc_cls,dec_cls,kw", [(MLPEncoder, MLPDecoder, dict(gated=True)),
                                               (MLPEncoder, MLPDecoder, dict(gated=False)),
                                               (ConvEncoder, ConvDecoder, dict(filters=4))])
def test_shapes_bounds_and_config_round_trip(enc_cls, dec_cls, kw):
    enc, dec = enc_cls(3, SHAPE, **kw), dec_cls(3, SHAPE, **kw)
    x = np.random.default_rng(0).random((5,) + SHAPE).astype("float32") * 100
    loc, log_var = enc(x)
    assert loc.shape == (5, 3) and log_var.shape == (5, 3)
    assert np.all(log_var.numpy() >= -6) and np.all(log_var.numpy() <= 2)
    assert dec(np.zeros((2, 5, 3), "float32")).shape == (2, 5) + SHAPE
    for layer in (enc, dec):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


def test_gated_dense_is_h_times_sigmoid_g():
    layer = GatedDense(2)
    x = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    y = layer(x).numpy()
    kernel, bias = (w.numpy() for w in layer._dense.weights)
    hg = x @ kernel + bias
    np.testing.assert_allclose(y, hg[:, :2] / (1 + np.exp(-hg[:, 2:])), rtol=1e-5)
    assert keras.layers.deserialize(keras.layers.serialize(layer)).units == 2


def test_wrong_input_shape_is_a_clear_error():
    enc = MLPEncoder(3, SHAPE)
    with pytest.raises(ValueError, match=r"Expected images of shape \(batch,\) \+ \(8, 8, 1\)"):
        enc(np.zeros((2, 7, 7, 1), "float32"))
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvEncoder(3, (10, 10, 1))
    with pytest.raises(ValueError, match="latent_dim.*Received: latent_dim=0"):
        MLPDecoder(0, SHAPE)
