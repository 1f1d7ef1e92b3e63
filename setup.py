"""Installs the tfpriors package and its Keras trainers.

Library dependencies are compatible ranges; the exact versions every recorded figure was measured
with are pinned in requirements.txt (`pip install -r requirements.txt -e .`).
"""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent

setup(
    name="tfpriors",
    version="0.1.0",
    description="Learnable VAE priors (VampPrior, mixture of Gaussians, VHP) with GECO/REWO beta "
                "control, importance-sampled evaluation and TF-Serving export, in TensorFlow 2, "
                "Keras 3 and TensorFlow Probability",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tfpriors", "tfpriors.*", "trainers", "trainers.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tf-keras>=2.21,<2.22",            # TensorFlow Probability imports it even under Keras 3
        "keras>=3.15,<4",
        "tensorflow-probability>=0.25,<0.26",
        "tensorflow-datasets>=4.9.10,<5",
        "importlib_resources>=6",          # tensorflow-datasets imports it on Python 3.11
        "keras-tuner>=1.4.8,<2",
        "tensorboard>=2.21,<2.22",         # keras-tuner's trials import it
        "numpy>=2,<3",
        "scipy>=1.13",
        "scikit-learn>=1.5",
        "networkx>=3.2",
        "matplotlib>=3.8",
    ],
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3.5"]},
)
