"""Reading and writing gzipped IDX files (the format MNIST is distributed in).

IDX layout (http://yann.lecun.com/exdb/mnist/): a 4-byte big-endian magic number
0x00 0x00 <type code> <ndim>, then ndim big-endian uint32 sizes, then the data in C order,
big-endian. Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64.
"""

import gzip
import os
import zlib

import numpy as np

__all__ = ["read_idx", "write_idx", "IDX_DTYPES"]

IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path, expected_dtype=np.uint8, expected_ndim=None):
    """Reads one gzipped IDX file into a numpy array.

    Args:
      path: path of a `.gz` IDX file, e.g. `train-images-idx3-ubyte.gz`.
      expected_dtype: numpy dtype the file must hold (uint8 for MNIST); None accepts any
        IDX type.
      expected_ndim: number of dimensions the file must have (3 for images, 1 for labels);
        None accepts any.

    Returns:
      numpy array with the shape in the header, in native byte order.

    Raises:
      FileNotFoundError: if `path` does not exist (the message names the path).
      ValueError: if the file is not valid gzip, is truncated, has a wrong magic number, an
        unexpected type or rank, or a payload whose size does not match the header; the
        message says what was expected and what was received.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Expected a gzipped IDX file at {path!r}. Received: no such file")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: expected a complete gzip-compressed IDX file. Received a file "
                         f"that cannot be decompressed ({type(e).__name__}: {e})") from e
    if len(raw) < 4:
        raise ValueError(f"{path}: expected at least a 4-byte IDX magic number. "
                         f"Received {len(raw)} bytes")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path}: expected an IDX magic number 0x0000TTNN with type code TT in "
                         f"{sorted(hex(c) for c in IDX_DTYPES)}. Received magic "
                         f"0x{raw[:4].hex()}")
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    if expected_dtype is not None and dtype.newbyteorder("=") != np.dtype(expected_dtype):
        raise ValueError(f"{path}: expected IDX data of type {np.dtype(expected_dtype).name}. "
                         f"Received type code 0x{raw[2]:02x} ({dtype.name})")
    if expected_ndim is not None and ndim != expected_ndim:
        raise ValueError(f"{path}: expected an IDX array of rank {expected_ndim}. "
                         f"Received rank {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: expected a {header}-byte IDX header. Received {len(raw)} bytes")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected_bytes = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected_bytes:
        raise ValueError(f"{path}: expected {expected_bytes} bytes for an IDX array of shape "
                         f"{shape} and type {dtype.name}. Received {len(raw)} bytes")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path, array):
    """Writes a numpy array as a gzipped IDX file (the inverse of `read_idx`).

    Args:
      path: output path (conventionally ending in `.gz`).
      array: array of a dtype listed in `IDX_DTYPES` (uint8, int8, int16, int32, float32,
        float64), rank <= 255.

    Raises:
      ValueError: if the dtype has no IDX type code.
    """
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"Expected an array of dtype in {sorted(d.name for d in codes)}. "
                         f"Received dtype {array.dtype.name}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    payload = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    with gzip.open(os.fspath(path), "wb") as f:
        f.write(header + payload)
