"""Package-level behaviour: `import trainers` alone is enough to load any saved model."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import binary_images, make_vae

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("prior_kind", ["vampprior", "mog"])
def test_import_trainers_registers_every_class_for_load_model(tmp_path, prior_kind):
    model = make_vae(prior_kind)
    x = binary_images(4)
    expected = np.asarray(model(x))
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    code = ("import numpy as np, keras, trainers\n"
            f"m = keras.models.load_model({str(path)!r})\n"
            f"print(np.abs(np.asarray(m(np.load({str(tmp_path / 'x.npy')!r}))) - "
            f"np.load({str(tmp_path / 'y.npy')!r})).max())\n")
    np.save(tmp_path / "y.npy", expected)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip().splitlines()[-1]) == 0.0
