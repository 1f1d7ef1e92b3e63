"""Test set-up: quiet TensorFlow logs and deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """The four small exports of tests/export_support.py, made once for all export tests."""
    from tests.export_support import export_all
    return export_all(tmp_path_factory)


@pytest.fixture(scope="session")
def loaded(exported):
    from tests.export_support import load_all
    return load_all(exported)
