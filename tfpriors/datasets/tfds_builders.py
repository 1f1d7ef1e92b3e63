"""tensorflow-datasets builders that work offline: the generated pendulum and MNIST from IDX files.

Importing this module registers the builders with TFDS under the names `pendulum` and
`mnist_idx`, so `tfds.load("pendulum", data_dir=...)` and `tfds.builder("mnist_idx", ...)` work.
The stock TFDS `mnist` builder downloads its archives and checks their checksums; `MnistIdx`
reads the same gzipped IDX files from `manual_dir` instead.

TFDS writers may reorder examples, so every example carries its position in the source as
`index`; the loaders here sort by it, which makes their output identical to the in-memory
loaders (`load_pendulum`, `load_mnist`).
"""

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from tfpriors._validation import check_choice, check_non_negative_int
from tfpriors.datasets.mnist import MNIST_FILES, _read_pair, resolve_mnist_dir
from tfpriors.datasets.pendulum import PENDULUM_NUM_EXAMPLES, PENDULUM_SIZE, load_pendulum

__all__ = ["Pendulum", "PendulumConfig", "MnistIdx", "MnistIdxConfig", "load_pendulum_tfds",
           "load_mnist_tfds"]

_VHP_CITATION = """@inproceedings{klushyn2019learning,
  title={Learning Hierarchical Priors in {VAEs}},
  author={Klushyn, Alexej and Chen, Nutan and Kurle, Richard and Cseke, Botond and
          van der Smagt, Patrick},
  booktitle={Advances in Neural Information Processing Systems},
  year={2019}}"""


def _offline_download_config(manual_dir=None):
    """DownloadConfig that never reaches for the network (no GCS mirror look-up)."""
    return tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)


def _read_sorted(builder, split):
    """A whole split as numpy arrays, sorted by the `index` feature (source order)."""
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
    order = np.argsort(data["index"], kind="stable")
    return {key: value[order] for key, value in data.items()}


@dataclasses.dataclass(eq=False)
class PendulumConfig(tfds.core.BuilderConfig):
    """Sizes of the pendulum splits (see `load_pendulum`).

    Attributes:
      num_train: training images (15,000 as in the paper).
      num_test: held-out images, the continuation of the same angle stream (disjoint).
      seed: angle generator seed.
      size: image size S.
    """
    num_train: int = PENDULUM_NUM_EXAMPLES
    num_test: int = 1500
    seed: int = 0
    size: int = PENDULUM_SIZE


class Pendulum(tfds.core.GeneratorBasedBuilder):
    """Pendulum images of Klushyn et al. (2019), Sec. 4.1: 16x16, one degree of freedom.

    Features: `image` float32 [S, S, 1] in [0, 1], `angle` float64 in [0, 2 pi), `index` int64.
    Splits: `train` (make_pendulum(num_train, seed)) and `test` (the next num_test angles).
    Configs: `default` (15,000 / 1,500) and `small` (1,000 / 200) for quick experiments.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: analytic anti-aliased rod and bob renderer."}
    BUILDER_CONFIGS = [
        PendulumConfig(name="default", description="15,000 train, 1,500 test images, seed 0."),
        PendulumConfig(name="small", num_train=1000, num_test=200,
                       description="1,000 train, 200 test images, seed 0."),
    ]

    def _info(self):
        size = self.builder_config.size
        return tfds.core.DatasetInfo(
            builder=self,
            description=("Images of a pendulum rotating about the image centre; the joint angle, "
                         "uniform in [0, 2 pi), is the only degree of freedom."),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(size, size, 1), dtype=np.float32),
                # tf.train.Example stores floats as float32: keep the float64 angle as raw bytes.
                "angle": tfds.features.Tensor(shape=(), dtype=np.float64,
                                              encoding=tfds.features.Encoding.BYTES),
                "index": tfds.features.Scalar(dtype=np.int64),
            }),
            supervised_keys=("image", "angle"),
            disable_shuffling=True,
            citation=_VHP_CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # generated data: nothing to download
        cfg = self.builder_config
        train_x, train_a, test_x, test_a = load_pendulum(cfg.num_train, cfg.num_test, cfg.seed,
                                                         cfg.size)
        splits = {"train": self._generate_examples(train_x, train_a)}
        if cfg.num_test:
            splits["test"] = self._generate_examples(test_x, test_a)
        return splits

    def _generate_examples(self, images, angles):
        for i in range(images.shape[0]):
            yield i, {"image": images[i], "angle": angles[i], "index": i}


def load_pendulum_tfds(data_dir, config="default"):
    """Prepares (if needed) and reads the pendulum TFDS data set.

    Args:
      data_dir: TFDS data directory.
      config: a `Pendulum` config name ("default", "small") or a `PendulumConfig`.

    Returns:
      (train_images [N, S, S, 1], train_angles [N], test_images [V, S, S, 1], test_angles [V]),
      equal to `load_pendulum` with the config's arguments.
    """
    builder = Pendulum(data_dir=os.fspath(data_dir), config=config)
    builder.download_and_prepare(download_config=_offline_download_config())
    train = _read_sorted(builder, "train")
    if "test" in builder.info.splits:
        test = _read_sorted(builder, "test")
    else:
        size = builder.builder_config.size
        test = {"image": np.zeros((0, size, size, 1), np.float32),
                "angle": np.zeros((0,), np.float64)}
    return train["image"], train["angle"], test["image"], test["angle"]


@dataclasses.dataclass(eq=False)
class MnistIdxConfig(tfds.core.BuilderConfig):
    """Held-out size of `MnistIdx`: the last `validation_size` training images (10,000)."""
    validation_size: int = 10000


class MnistIdx(tfds.core.GeneratorBasedBuilder):
    """MNIST read from gzipped IDX files in `manual_dir` (no download, no checksums).

    Features: `image` uint8 [28, 28, 1] (0..255), `label` ClassLabel(10), `index` int64
    (position in its IDX file). Splits: `train` (first N - V training images), `validation`
    (last V, the pythae benchmark's held-out set) and `test` if `t10k-*` files are present.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Place train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz (optionally "
        "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz) in `manual_dir`.")
    BUILDER_CONFIGS = [MnistIdxConfig(name="default", description="Last 10,000 train images "
                                                                  "held out as `validation`.")]

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="MNIST handwritten digits from local IDX files.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=10),
                "index": tfds.features.Scalar(dtype=np.int64),
            }),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
            homepage="http://yann.lecun.com/exdb/mnist/",
        )

    def _split_generators(self, dl_manager):
        path = resolve_mnist_dir(os.fspath(dl_manager.manual_dir))
        images, labels = _read_pair(path, MNIST_FILES["train_images"], MNIST_FILES["train_labels"])
        n, v = images.shape[0], self.builder_config.validation_size
        if v > n:
            raise ValueError(f"Expected `validation_size` <= {n} (the number of training "
                             f"images). Received: validation_size={v}")
        splits = {"train": self._generate_examples(images[:n - v], labels[:n - v])}
        if v:
            splits["validation"] = self._generate_examples(images[n - v:], labels[n - v:])
        if os.path.exists(os.path.join(path, MNIST_FILES["test_images"])):
            splits["test"] = self._generate_examples(
                *_read_pair(path, MNIST_FILES["test_images"], MNIST_FILES["test_labels"]))
        return splits

    def _generate_examples(self, images, labels):
        for i in range(images.shape[0]):
            yield i, {"image": images[i], "label": int(labels[i]), "index": i}


def load_mnist_tfds(data_dir, manual_dir=None, validation_size=10000, dtype="float32",
                    include_test=False):
    """Reads MNIST through the `mnist_idx` TFDS builder, preparing it from IDX files if needed.

    Args:
      data_dir: TFDS data directory.
      manual_dir: directory with the IDX files; needed only if `data_dir` is not prepared.
      validation_size: V (a config named "default" for 10,000, "val{V}" otherwise).
      dtype: "float32" (x / 255) or "uint8".
      include_test: also return the `test` split (needs the `t10k-*` files).

    Returns:
      the same tuple as `load_mnist(manual_dir, validation_size, dtype, include_test)`.

    Raises:
      FileNotFoundError: if `data_dir` is not prepared and `manual_dir` is None, or a split
        asked for is missing.
    """
    validation_size = check_non_negative_int("validation_size", validation_size)
    check_choice("dtype", dtype, ("float32", "uint8"))
    config = ("default" if validation_size == 10000 else
              MnistIdxConfig(name=f"val{validation_size}", validation_size=validation_size))
    builder = MnistIdx(data_dir=os.fspath(data_dir), config=config)
    if not builder.is_prepared():
        if manual_dir is None:
            raise FileNotFoundError(f"Expected a prepared `mnist_idx` data set in {data_dir!r} "
                                    "or a `manual_dir` with the IDX files. Received neither")
        builder.download_and_prepare(
            download_config=_offline_download_config(os.fspath(manual_dir)))
    names = ["train", "validation"] + (["test"] if include_test else [])
    out = []
    for name in names:
        if name not in builder.info.splits:
            if name == "validation":           # V = 0: an empty held-out split
                out += [np.zeros((0, 28, 28, 1), np.uint8), np.zeros((0,), np.int64)]
                continue
            raise FileNotFoundError(f"Expected split {name!r} in {builder.data_dir}. Received "
                                    f"splits {sorted(builder.info.splits)}")
        split = _read_sorted(builder, name)
        out += [split["image"], split["label"].astype(np.int64)]
    if dtype == "float32":
        out = [a.astype(np.float32) / np.float32(255.0) if i % 2 == 0 else a
               for i, a in enumerate(out)]
    return tuple(out)
