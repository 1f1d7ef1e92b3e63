"""Argument checks shared by the package: errors name what was expected and what was received."""

import math

__all__ = ["check_positive_int", "check_non_negative_int", "check_positive_float",
           "check_choice", "check_finite_array"]


def check_positive_int(name, value):
    """Returns `value` as int if it is an int >= 1, else raises ValueError."""
    if isinstance(value, bool) or isinstance(value, float) or not hasattr(value, "__index__"):
        raise ValueError(f"Expected `{name}` to be a positive int. Received: {name}={value!r}")
    value = int(value)
    if value < 1:
        raise ValueError(f"Expected `{name}` to be a positive int. Received: {name}={value}")
    return value


def check_non_negative_int(name, value):
    """Returns `value` as int if it is an int >= 0, else raises ValueError."""
    if isinstance(value, bool) or isinstance(value, float) or not hasattr(value, "__index__"):
        raise ValueError(f"Expected `{name}` to be a non-negative int. Received: {name}={value!r}")
    value = int(value)
    if value < 0:
        raise ValueError(f"Expected `{name}` to be a non-negative int. Received: {name}={value}")
    return value


def check_positive_float(name, value):
    """Returns `value` as float if it is a finite number > 0, else raises ValueError."""
    try:
        value_f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Expected `{name}` to be a positive number. Received: {name}={value!r}")
    if not math.isfinite(value_f) or value_f <= 0:
        raise ValueError(f"Expected `{name}` to be a positive number. Received: {name}={value!r}")
    return value_f


def check_choice(name, value, choices):
    """Returns `value` if it is one of `choices`, else raises ValueError."""
    if value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {sorted(choices, key=repr)}. Received: {name}={value!r}")
    return value


def check_finite_array(name, array):
    """Raises ValueError if a numpy array holds NaN or infinite values."""
    import numpy as np
    array = np.asarray(array)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"Expected `{name}` to hold only finite values. Received: {bad} NaN or "
                         f"infinite entries in an array of shape {array.shape}")
    return array
