"""tfpriors: learnable priors for variational autoencoders in TensorFlow 2, Keras 3 and TFP.

Importing the package imports TensorFlow with its start-up banner silenced: TF 2.21 writes its
INFO lines (oneDNN, missing CUDA drivers, CPU instructions) straight to file descriptor 2 before
its logging is initialised, so `TF_CPP_MIN_LOG_LEVEL` does not hide them, and they would bury
the one-line errors of the command lines (`trainers.cli`). Only those import-time lines are
hidden; everything TensorFlow logs later, and any import error, is shown as usual. Set
`TFPRIORS_TF_STARTUP_LOGS=1` (or pass `--debug` to a command) to see the banner, or import
TensorFlow yourself first.
"""

import os
import sys

__version__ = "0.1.0"


def _import_tensorflow_quietly():
    if ("tensorflow" in sys.modules or os.environ.get("TFPRIORS_TF_STARTUP_LOGS") == "1"
            or "--debug" in sys.argv):
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()
