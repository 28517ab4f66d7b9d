"""Isomorphism-invariant hashing of labelled DAGs.

This is NAS-Bench-101's own spec hash (iterated MD5 over in/out-degree, label and sorted
neighbour hashes).  NB101 tables are keyed by it, so it must stay bit-for-bit identical to
the published algorithm; the other cell spaces reuse it for their canonical keys.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def dag_hash(matrix: np.ndarray, labels: Sequence[int | str]) -> str:
    """Hash a labelled DAG given as an upper-triangular 0/1 adjacency matrix.

    Isomorphic graphs (same labels, same connectivity up to vertex renumbering) hash equal.
    """
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    if matrix.shape != (n, n) or len(labels) != n:
        raise ValueError(
            f"dag_hash needs an n x n matrix and n labels, got {matrix.shape} and {len(labels)} labels"
        )
    in_edges = matrix.sum(axis=0).tolist()
    out_edges = matrix.sum(axis=1).tolist()
    hashes = [_md5(str(h)) for h in zip(out_edges, in_edges, labels)]
    preds = [np.flatnonzero(matrix[:, v]).tolist() for v in range(n)]
    succs = [np.flatnonzero(matrix[v, :]).tolist() for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5(
                "".join(sorted(hashes[w] for w in preds[v]))
                + "|"
                + "".join(sorted(hashes[w] for w in succs[v]))
                + "|"
                + hashes[v]
            )
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))
