"""Small RSICD-shaped data for the fetch tests: JPEG bytes and Parquet files with arampacha/rsicd's columns."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def jpeg(seed: int, size: int = 12) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def parquet_bytes(rows: list[tuple[str, list[str], bytes]], drop: str | None = None) -> bytes:
    """A Parquet file shaped like arampacha/rsicd: filename, captions, image {bytes, path}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"filename": pa.array([r[0] for r in rows], pa.string()),
               "captions": pa.array([r[1] for r in rows], pa.list_(pa.string())),
               "image": pa.array([{"bytes": r[2], "path": None} for r in rows],
                                 pa.struct([("bytes", pa.binary()), ("path", pa.string())]))}
    columns.pop(drop, None)
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def rsicd_rows(split: str, n: int, start: int) -> list[tuple[str, list[str], bytes]]:
    return [(f"{split}_{start + i}.jpg", [f"A {split} scene number {start + i}, view {j}." for j in range(5)],
             jpeg(start + i)) for i in range(n)]
