"""Token shards in the upstream modded-nanogpt format (numpy only).

Layout: a header of 256 little-endian int32 (1024 bytes) with header[0] = 20240520 (magic),
header[1] = 1 (version), header[2] = token count; then the tokens as little-endian uint16.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from copilot.core.errors import TrackError

if TYPE_CHECKING:  # numpy loads when tokens are read or written, not to check a header
    import numpy as np

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
_TOKEN_DTYPE = "<u2"


def write_shard(path: Path, tokens: np.ndarray) -> None:
    """Write tokens (values 0..65535) as one shard; the file appears atomically (tmp + rename)."""
    import numpy as np

    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise ValueError(f"tokens must be 1-D, got shape {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 0xFFFF):
        raise ValueError("tokens must fit in uint16 (0..65535)")
    if arr.size >= 2**31:
        raise ValueError("a shard holds fewer than 2**31 tokens")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0], header[1], header[2] = SHARD_MAGIC, SHARD_VERSION, arr.size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(arr.astype(_TOKEN_DTYPE, copy=False).tobytes())
    os.replace(tmp, path)


def read_shard_header(path: Path) -> int:
    """Validate a shard's header and size; return its token count. Raises TrackError if invalid."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
    except OSError as exc:
        raise TrackError(f"cannot read shard {path}: {exc.strerror or exc}") from exc
    if len(raw) < HEADER_BYTES:
        raise TrackError(f"shard {path} is truncated: {size} bytes, shorter than its {HEADER_BYTES}-byte header; "
                         "delete it and prepare the data again")
    header = struct.unpack("<3i", raw[:12])
    if int(header[0]) != SHARD_MAGIC:
        raise TrackError(f"shard {path} has bad magic {int(header[0])} (expected {SHARD_MAGIC}); "
                         "it is not a token shard in the upstream format")
    if int(header[1]) != SHARD_VERSION:
        raise TrackError(f"shard {path} has unsupported version {int(header[1])} (expected {SHARD_VERSION})")
    count = int(header[2])
    expected = HEADER_BYTES + 2 * count
    if count < 0 or size != expected:
        raise TrackError(f"shard {path} is truncated or corrupt: header says {count} tokens "
                         f"({expected} bytes) but the file has {size} bytes; "
                         "delete it and prepare the data again")
    return count


def read_shard(path: Path) -> np.ndarray:
    """Read a whole shard as a uint16 array after validating header and size."""
    import numpy as np

    count = read_shard_header(path)
    with open(path, "rb") as f:
        f.seek(HEADER_BYTES)
        tokens = np.frombuffer(f.read(2 * count), dtype=_TOKEN_DTYPE, count=count)
    return tokens.astype(np.uint16, copy=False)
