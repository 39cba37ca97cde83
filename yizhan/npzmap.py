"""Memory-mapped reading of uncompressed ``.npz`` archives: the arrays without a copy.

``numpy.load`` copies each array of an ``.npz`` into memory. The usage month files
(:mod:`yizhan.stations.usage_files`) and the walking network files
(:mod:`yizhan.network.store`) hold arrays of hundreds of megabytes at national scale, read
by every analysis process, so each stored (uncompressed) member is mapped where its data
lies in the file: after the zip entry's local header and the ``.npy`` header. A replaced
file keeps its old data while it is mapped.

Hand-written because numpy maps only plain ``.npy`` files (``mmap_mode`` is ignored for an
``.npz``), and no well-kept library maps the members of an archive. Imports nothing from
Yizhan.
"""

from __future__ import annotations

import math
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

_LOCAL_HEADER = b"PK\x03\x04"


def mapped_npz(path: Path, *, compressed: bool = True) -> dict[str, NDArray[Any]]:
    """The arrays of an ``.npz`` file, stored members memory-mapped (read-only, no copy).

    Scalars and empty arrays are read (nothing to map). A compressed member is read into
    memory when *compressed* is true; otherwise it is refused.

    Raises
    ------
    ValueError
        A member that is not a ``.npy`` array, holds Python objects, has an unknown
        ``.npy`` version, or (``compressed=False``) is compressed.
    """
    out: dict[str, NDArray[Any]] = {}
    with zipfile.ZipFile(path) as zf, path.open("rb") as fh:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise ValueError(f"member {info.filename} is not an array")
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                if not compressed:
                    raise ValueError(f"member {info.filename} is compressed")
                with zf.open(info) as member:
                    out[name] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            fh.seek(info.header_offset)
            local = fh.read(30)
            if local[:4] != _LOCAL_HEADER:
                raise ValueError(f"member {info.filename} has no local header")
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"member {info.filename} has .npy version {version}")
            if dtype.hasobject:
                raise ValueError(f"member {info.filename} holds objects")
            if math.prod(shape) == 0 or shape == ():
                with zf.open(info) as member:
                    out[name] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            out[name] = np.memmap(
                path,
                dtype=dtype,
                mode="r",
                offset=fh.tell(),
                shape=shape,
                order="F" if fortran else "C",
            )
    return out


__all__ = ["mapped_npz"]
