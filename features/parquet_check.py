"""Whether a Parquet file holds the bytes its writer wrote: every page decoded, its checksum
verified where the writer stored one, and the decoded values held against the file's own
footer (row counts, min/max, null counts).

A page's CRC32 (an optional field of the Parquet page header) is the only thing that reliably
shows a changed byte: without it, most garbled bytes inside a compressed page still decode, to
other values. So files are reported as verified (every column's pages carry checksums) or not,
and for unverified files the footer comparison and decoding catch what they can. pyarrow reads
here because it verifies page checksums; polars does not.

`naming_corrupt_files` wraps a stage that reads a folder of Parquet files with polars: when the
stage fails (polars names no file in its decoding errors), the folder's files are checked and the
first corrupt one is raised instead, so the error says which file to restore.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


class CorruptFile(Exception):
    """A file whose bytes are not what its writer wrote; the message names file and place."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path} is corrupt: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class FileCheck:
    path: Path
    rows: int
    checksummed: bool
    """Every column chunk's pages carry a CRC32, which the check verified."""


def _has_page_crc(header: bytes) -> bool:
    """Whether a page header (Thrift compact protocol) carries field 4, `crc`. Fields 1-3 are
    i32s (type, uncompressed and compressed size), so the header reads: short field header
    0x15, varint, 0x15, varint, 0x15, varint, then 0x15 again exactly when a crc follows."""
    pos, field = 0, 0
    while pos < len(header):
        byte = header[pos]
        pos += 1
        delta, kind = byte >> 4, byte & 0x0F
        if byte == 0 or delta == 0:  # end of struct, or a long-form header no writer uses here
            return False
        field += delta
        if field >= 4:
            return field == 4 and kind == 5
        if kind != 5:
            return False
        while pos < len(header) and header[pos] & 0x80:
            pos += 1
        pos += 1
    return False


def _checksummed(path: Path, metadata: pq.FileMetaData) -> bool:
    with open(path, "rb") as handle:
        for rg in range(metadata.num_row_groups):
            for ci in range(metadata.num_columns):
                chunk = metadata.row_group(rg).column(ci)
                offset = chunk.dictionary_page_offset or chunk.data_page_offset
                handle.seek(offset)
                if not _has_page_crc(handle.read(32)):
                    return False
    return metadata.num_row_groups > 0


def _physical(column: pa.ChunkedArray, physical_type: str) -> pa.ChunkedArray:
    """The column as the integers it is stored as (timestamps, dates), so that garbled values
    outside any calendar still compare with the footer's raw statistics."""
    if physical_type in ("INT32", "INT64") and not pa.types.is_integer(column.type):
        width = pa.int32() if physical_type == "INT32" else pa.int64()
        return column.cast(width)
    return column


def _disagreement(column: pa.ChunkedArray, stats: pq.Statistics) -> str | None:
    """What the decoded values of a column chunk contradict in its footer statistics."""
    if stats.has_null_count and column.null_count != stats.null_count:
        return f"{column.null_count} nulls decoded, the footer says {stats.null_count}"
    kind = stats.physical_type
    if not stats.has_min_max or column.null_count == len(column) or kind in ("FLOAT", "DOUBLE"):
        return None  # floats: writers differ in how NaN enters min/max
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    try:
        bounds = pc.min_max(_physical(column, kind))
    except pa.ArrowNotImplementedError:
        return None  # a type without an order (nested): decoding it was the check
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    footer = (stats.min_raw, stats.max_raw)
    if kind in ("BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"):
        # writers may truncate string statistics: they bound the values without equalling them
        low, high = (v.encode() if isinstance(v, str) else v for v in (low, high))
        footer = tuple(v.encode() if isinstance(v, str) else v for v in footer)
        if low < footer[0] or high > footer[1]:
            return f"values {low!r}..{high!r} outside the footer's {footer[0]!r}..{footer[1]!r}"
        return None
    if (low, high) != footer:
        return f"values {low}..{high} decoded, the footer says {footer[0]}..{footer[1]}"
    return None


def check_file(path: Path) -> FileCheck:
    """Decode every page of the file, verifying page checksums, and compare the values with the
    footer. Raises CorruptFile naming the row group and column at fault."""
    path = Path(path)
    try:
        parquet = pq.ParquetFile(path, page_checksum_verification=True)
        metadata = parquet.metadata
    except (OSError, pa.ArrowException) as error:
        raise CorruptFile(path, f"unreadable footer ({error})") from None
    for rg in range(metadata.num_row_groups):
        group = metadata.row_group(rg)
        for ci in range(metadata.num_columns):
            chunk = group.column(ci)
            name = chunk.path_in_schema
            where = f"column {name!r}, row group {rg}"
            try:
                column = parquet.read_row_group(rg, columns=[name]).column(0)
            except (OSError, pa.ArrowException) as error:
                problem = str(error).splitlines()[0]
                if "CRC" in problem or "checksum" in problem:
                    problem = f"page checksum mismatch ({problem})"
                raise CorruptFile(path, f"{where}: {problem}") from None
            if len(column) != group.num_rows:
                raise CorruptFile(
                    path, f"{where}: {len(column)} values decoded, the footer says {group.num_rows}"
                )
            stats = chunk.statistics
            problem = _disagreement(column, stats) if stats is not None else None
            if problem:
                raise CorruptFile(path, f"{where}: {problem}")
    return FileCheck(path, metadata.num_rows, _checksummed(path, metadata))


def check_files(paths: list[Path], workers: int | None = None) -> list[FileCheck]:
    """`check_file` over many files on a few threads (pyarrow decodes without the GIL); the
    first corrupt file, in the given order, is raised."""
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(check_file, path) for path in paths]
        return [future.result() for future in futures]


def parquet_files(folder: Path) -> list[Path]:
    """The Parquet files under `folder` in path order, hidden ones (temporaries) left out."""
    folder = Path(folder)
    return sorted(
        p
        for p in folder.rglob("*.parquet")
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def find_corrupt(folder: Path) -> CorruptFile | None:
    """The first corrupt Parquet file under `folder`, or None when every file checks out."""
    try:
        check_files(parquet_files(folder))
    except CorruptFile as corrupt:
        return corrupt
    return None


@contextmanager
def naming_corrupt_files(folder: Path) -> Iterator[None]:
    """Run a block that reads the Parquet files under `folder`; if it fails and one of them is
    corrupt, raise that file's CorruptFile (the block's error as its cause), else the error."""
    try:
        yield
    except (Exception, pl.exceptions.PanicException) as error:
        corrupt = find_corrupt(folder)
        if corrupt is None:
            raise
        raise corrupt from error
