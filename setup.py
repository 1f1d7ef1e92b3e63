"""Installs the tfpriors package and its Keras trainers."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [line.strip() for line in (here / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

setup(
    name="tfpriors",
    version="0.1.0",
    description="Learnable priors for VAEs (VampPrior, MoG, VHP, LaDDer, CP-VAE) in TF2/Keras 3/TFP",
    long_description=(here / "README.md").read_text() if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tfpriors", "tfpriors.*", "trainers", "trainers.*"]),
    python_requires=">=3.10",
    install_requires=requirements,
)
