"""Experiment locations that are local folders or URIs (``s3://``, ``gs://``, ``file://``).

On a cluster the experiment belongs in shared storage, so every node and a restarted driver
see the same files; Tune writes there itself through ``pyarrow.fs``.  raynas's own files
(its settings, ``trials.parquet``, plots) go the same way: written to a local folder first,
then copied up, so a lost connection never leaves a half-written object behind.
"""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs


def is_uri(location: str | os.PathLike) -> bool:
    return "://" in str(location)


def resolve(location: str | os.PathLike) -> str:
    """A URI unchanged; a local path absolute, with ``~`` expanded."""
    return str(location) if is_uri(location) else str(Path(location).expanduser().resolve())


def join(location: str, *parts: str) -> str:
    return "/".join([str(location).rstrip("/"), *parts]) if is_uri(location) else str(Path(location, *parts))


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
        raise ValueError(f"cannot open storage {uri!r}: {error}") from error


def read_text(location: str) -> str | None:
    """The text of the file at ``location``, or None if there is none."""
    if not is_uri(location):
        path = Path(location).expanduser()
        return path.read_text() if path.is_file() else None
    fs, path = _filesystem(location)
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        return stream.read().decode()


def upload(files: list[Path], location: str) -> None:
    """Copy local ``files`` into the folder ``location`` (a URI), each written whole."""
    fs, root = _filesystem(location)
    fs.create_dir(root, recursive=True)
    for file in files:
        pafs.copy_files(str(file), f"{root}/{file.name}", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
