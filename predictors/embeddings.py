"""Architecture embeddings: one vector per canonical architecture, stored in Parquet.

Whatever produced them (Jacobian contrastive encoder, a CG encoder, or a plain one-hot
encoding of the space's config), searchers and surrogates only see this table: the
architectures of the candidate pool and an ``n x d`` matrix aligned with them.  Jacobian
embeddings also keep the vector of each random initialisation (``per_init``, ``n x K x d``;
the architecture's vector is their mean): the published embedding BO models those.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raynas.arch import Arch
from raynas.io import read_parquet, write_parquet_atomic
from search_spaces import SearchSpace, as_space
from ray.tune.search.sample import Categorical


#: the optional column of each initialisation's vector (archs x inits x dim)
PER_INIT = "init_embeddings"


@dataclass
class ArchEmbeddings:
    """Embedding vectors of a pool of architectures (one row per canonical key)."""

    space: SearchSpace
    archs: list[Arch]
    vectors: np.ndarray
    per_init: np.ndarray | None = field(default=None, repr=False)
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.archs):
            raise ValueError(
                f"need one vector per architecture: {len(self.archs)} archs, vectors of shape {self.vectors.shape}"
            )
        bad = ~np.isfinite(self.vectors).all(axis=1)
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} of {len(self.archs)} embedding vectors hold NaN or inf values,"
                f" e.g. that of {self.archs[int(np.argmax(bad))]}"
            )
        if self.per_init is not None:
            self.per_init = np.asarray(self.per_init, dtype=np.float32)
            if self.per_init.ndim != 3 or self.per_init.shape[::2] != self.vectors.shape:
                raise ValueError(
                    f"per_init must be archs x inits x {self.dim} (vectors {self.vectors.shape}), got {self.per_init.shape}"
                )
        self.index = {}
        for row, arch in enumerate(self.archs):
            self.index.setdefault(arch.key, row)

    def __len__(self) -> int:
        return len(self.archs)

    def __contains__(self, arch: Arch) -> bool:
        return arch.key in self.index

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def vector(self, arch: Arch) -> np.ndarray:
        try:
            return self.vectors[self.index[arch.key]]
        except KeyError:
            raise KeyError(f"architecture {arch} has no embedding in this table") from None

    def rows(self, archs: Iterable[Arch]) -> np.ndarray:
        return np.array([self.index[a.key] for a in archs], dtype=np.int64)

    # ------------------------------------------------------------------ persistence
    def to_parquet(self, path: str | Path) -> Path:
        columns = {
            "space": [self.space.name] * len(self.archs),
            "arch": [a.text for a in self.archs],
            "key": [a.key for a in self.archs],
            "embedding": pa.array(list(self.vectors), type=pa.list_(pa.float32(), self.dim)),
        }
        if self.per_init is not None:
            inits = self.per_init.shape[1]
            flat = pa.FixedSizeListArray.from_arrays(pa.array(self.per_init.reshape(-1)), self.dim)
            columns[PER_INIT] = pa.FixedSizeListArray.from_arrays(flat, inits)
        return write_parquet_atomic(pa.table(columns), path)

    @classmethod
    def from_parquet(cls, path: str | Path, space: SearchSpace | str | None = None) -> "ArchEmbeddings":
        table = read_parquet(path, "embedding table", columns=("space", "arch", "embedding"))
        _check_columns(table, path)
        names = set(table.column("space").to_pylist())
        if space is None:
            if len(names) != 1:
                raise ValueError(f"embedding table {path} holds spaces {sorted(names)}; name the one to read")
            space = names.pop()
        space = as_space(space)
        keep = np.asarray(table.column("space").to_pylist()) == space.name
        if not keep.any():
            raise ValueError(f"embedding table {path} has no rows of space {space.name!r}; spaces: {sorted(names)}")
        table = table.filter(pa.array(keep))
        archs = [space.parse(text) for text in table.column("arch").to_pylist()]
        vectors = table.column("embedding").to_pylist()
        if len({len(v) for v in vectors}) > 1:
            raise ValueError(f"embedding table {path}: embeddings differ in length {sorted({len(v) for v in vectors})}")
        vectors = np.asarray(vectors, dtype=np.float32)
        per_init = None
        if PER_INIT in table.column_names:
            column = table.column(PER_INIT).combine_chunks()
            values = pc.list_flatten(pc.list_flatten(column)).to_numpy(zero_copy_only=False)
            per_init = values.reshape(len(vectors), -1, vectors.shape[1]) if len(vectors) else None
        return cls(space, archs, vectors, per_init)

    # ------------------------------------------------------------------ baselines
    @classmethod
    def one_hot(cls, space: SearchSpace, archs: Iterable[Arch]) -> "ArchEmbeddings":
        """The space's own categorical config, one-hot encoded: the encoding-dependent
        baseline the learned embeddings are measured against."""
        archs = list(dict.fromkeys(archs))
        domains = space.tune_space()
        blocks = []
        configs = [space.encode(space.canonical(a)) for a in archs]
        for key, domain in domains.items():
            if not isinstance(domain, Categorical):
                raise ValueError(f"one-hot needs categorical domains; {key} of {space.name} is {type(domain).__name__}")
            options = list(domain.categories)
            block = np.zeros((len(archs), len(options)), dtype=np.float32)
            block[np.arange(len(archs)), [options.index(c[key]) for c in configs]] = 1.0
            blocks.append(block)
        return cls(space, archs, np.concatenate(blocks, axis=1))


def reduce_vectors(vectors: np.ndarray, dim: int | None, seed: int | None = None) -> np.ndarray:
    """Rows scaled to unit length (the encoder is trained on cosine similarities), PCA to
    ``dim`` dimensions (if fewer than the vectors have), each scaled to unit variance: what
    a GP on a few hundred points can use."""
    from sklearn.decomposition import PCA

    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms > 0, norms, 1.0)
    if dim is not None and dim < vectors.shape[1]:
        vectors = PCA(n_components=dim, random_state=seed).fit_transform(vectors)
    spread = vectors.std(axis=0)
    return (vectors - vectors.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def _check_columns(table: pa.Table, path: str | Path) -> None:
    """Column types and nulls, checked before any value is used, so a table written by
    something else fails with a ValueError naming the column instead of deep in numpy."""
    schema = table.schema
    for name in ("space", "arch"):
        if not (pa.types.is_string(schema.field(name).type) or pa.types.is_large_string(schema.field(name).type)):
            raise ValueError(f"embedding table {path}: column {name!r} must hold text, has {schema.field(name).type}")
    kind = schema.field("embedding").type
    numeric = pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind) or pa.types.is_large_list(kind)
    if not (numeric and (pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type))):
        raise ValueError(f"embedding table {path}: column 'embedding' must hold lists of numbers, has {kind}")
    for name in ("space", "arch", "embedding"):
        column = table.column(name)
        if column.null_count:
            raise ValueError(f"embedding table {path}: column {name!r} has {column.null_count} empty (null) values")
    values = pc.list_flatten(table.column("embedding"))
    if values.null_count:
        raise ValueError(f"embedding table {path}: column 'embedding' has {values.null_count} null numbers")
