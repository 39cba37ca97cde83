"""The siting model's plumbing: merging duplicate rows and columns, and breaking ties.

:func:`yizhan.geo.siting.site_mclp` builds a 0/1 coverage matrix (demand rows × candidate
columns) and hands it to the helpers here:

* :func:`reduce_model` drops rows and columns that cannot matter and merges duplicates
  (demand rows with the same candidates; candidates with the same coverage, keeping the
  first column), which shrinks the model without changing its optimum;
* ties are broken the same way every time, and documented.

Ties
----
Many candidates can add exactly the same demand (a uniform grid of equal hexagons is the
extreme case: every interior site covers seven whole cells). Which of them is suggested
must not depend on floating-point noise or on which of several equally good answers the
solver met first, so:

1. Candidates are ranked once, by :func:`tie_order`:

   a. standing on more demand first (for candidates taken from demand points, the weight
      of their own point: a site among more people shortens more walks; on a hexagon
      grid, cells clipped by the study area's edge weigh less, so whole cells come first);
   b. then nearer an existing station (the edge of today's service, usually the built-up
      area, rather than a far corner of the study area: with land area as demand every
      whole cell ties, and this keeps suggestions next to the city instead of along the
      grid's first row);
   c. then in the order they were given (demand order for candidates taken from demand).

   The model's columns are laid out in that rank.
2. Gains equal within :data:`TIE_RTOL` (relative) are equal: the greedy step takes the
   best-ranked column among them (:func:`best_column`), and the chosen sites are listed
   in order of contribution with equal gains in rank order.
3. The exact solver's set is made canonical (:func:`prefer_ranked`): each chosen site is
   swapped for the best-ranked unchosen candidate that keeps the covered demand, until no
   swap applies; the optimum is unchanged.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Gains within this relative difference (of the largest gain, or 1) count as equal.
TIE_RTOL = 1e-9
#: At most this many rounds of canonical swaps (each round tries every chosen site).
MAX_SWAP_ROUNDS = 50


def _tol(scale: float) -> float:
    return TIE_RTOL * max(1.0, abs(scale))


def row_groups(mat: sp.csr_matrix) -> IntArray:
    """Group id of each row of a 0/1 CSR matrix; rows with equal patterns share an id.

    Rows are keyed by their length and two random projections (``mat @ h``); equal rows
    (same sorted column indices) give bit-identical sums. Every group is then verified
    against its first row, so a (vanishingly unlikely) collision only means no merging.
    """
    n, m = mat.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(20240601)
    h = rng.random((m, 2))
    keys = np.column_stack([np.diff(mat.indptr).astype(np.float64), mat.astype(np.float64) @ h])
    _, first, group = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    group = np.asarray(group, dtype=np.int64).ravel()
    rep = first[group]
    if (mat - mat[rep]).count_nonzero():
        return np.arange(n, dtype=np.int64)
    return group


def reduce_model(
    mat: sp.csr_matrix, weight: FloatArray
) -> tuple[sp.csr_matrix, FloatArray, IntArray, IntArray]:
    """Drop useless rows/columns and merge duplicates.

    Returns the reduced matrix, row weights, the original column of each reduced column,
    and for each original column the reduced column it was merged into (``-1`` if none).
    """
    m = mat.shape[1]
    useful_rows = (weight > 0) & (np.diff(mat.indptr) > 0)
    a = mat[useful_rows]
    w = weight[useful_rows]
    g = row_groups(a)
    ng = int(g.max()) + 1 if g.size else 0
    w_agg = np.asarray(np.bincount(g, weights=w, minlength=ng), dtype=np.float64)
    first = np.unique(g, return_index=True)[1]
    a = a[first]
    # Columns: drop empty ones, merge identical ones (keep the lowest index).
    at = a.T.tocsr()
    at.sort_indices()
    nonempty = np.flatnonzero(np.diff(at.indptr) > 0)
    col_map = np.full(m, -1, dtype=np.int64)
    if nonempty.size == 0:
        return (
            sp.csr_matrix((a.shape[0], 0), dtype=np.int8),
            w_agg,
            nonempty.astype(np.int64),
            col_map,
        )
    cg = row_groups(at[nonempty])
    _, cfirst = np.unique(cg, return_index=True)
    cfirst = np.sort(cfirst)
    keep_cols = nonempty[cfirst]
    new_of_group = np.empty(int(cg.max()) + 1, dtype=np.int64)
    new_of_group[cg[cfirst]] = np.arange(cfirst.size)
    col_map[nonempty] = new_of_group[cg]
    return a[:, keep_cols].tocsr(), w_agg, keep_cols.astype(np.int64), col_map


def tie_order(own_weight: ArrayLike, distance_m: ArrayLike | None = None) -> IntArray:
    """Rank of candidates for ties: more demand at the candidate first, then nearer an
    existing station, then input order.

    Parameters
    ----------
    own_weight : array_like of float
        Demand at each candidate (the weight of the demand point it stands on; zeros for
        candidates given by the caller).
    distance_m : array_like of float, optional
        Distance from each candidate to the nearest existing station, metres (``inf`` or
        omitted when there is none).

    Returns
    -------
    numpy.ndarray of int
        Candidate positions, best-ranked first.
    """
    w = np.asarray(own_weight, dtype=np.float64).ravel()
    d = np.zeros(w.size) if distance_m is None else np.asarray(distance_m, np.float64).ravel()
    # Weights equal within TIE_RTOL are equal (whole hexagons' areas differ by rounding).
    top = float(np.max(np.abs(w))) if w.size else 0.0
    key = np.round(w / (top * TIE_RTOL * 10), 0) if top > 0 else w
    return np.lexsort((np.arange(w.size), d, -key)).astype(np.int64)


def best_column(gains: FloatArray) -> int:
    """The first column whose gain is within :data:`TIE_RTOL` of the largest; ``-1`` when
    no gain is finite."""
    if gains.size == 0:
        return -1
    top = float(np.max(gains))
    if not np.isfinite(top):
        return -1
    return int(np.flatnonzero(gains >= top - _tol(top))[0])


def prefer_ranked(
    a_csc: sp.csc_matrix, w: FloatArray, cols: list[int], max_rounds: int = MAX_SWAP_ROUNDS
) -> list[int]:
    """The chosen columns *cols*, each swapped for a lower (better-ranked) column when that
    keeps the covered weight, until no swap applies.

    Removing chosen column *j* loses the weight only *j* covers; any unchosen column
    ``k < j`` that regains at least as much (within :data:`TIE_RTOL`) replaces it. Each
    swap lowers the sum of the chosen columns, so this ends; the covered weight never
    drops (beyond the tolerance), so an optimal set stays optimal.

    Returns
    -------
    list of int
        The canonical set, sorted.
    """
    chosen = sorted(set(cols))
    if not chosen:
        return chosen
    n_rows, m = a_csc.shape
    count = np.zeros(n_rows, dtype=np.int64)
    for j in chosen:
        count[a_csc.indices[a_csc.indptr[j] : a_csc.indptr[j + 1]]] += 1
    tol = _tol(float(w.sum()))
    is_chosen = np.zeros(m, dtype=bool)
    is_chosen[chosen] = True
    for _ in range(max_rounds):
        swapped = False
        for j in sorted(chosen, reverse=True):
            rows = a_csc.indices[a_csc.indptr[j] : a_csc.indptr[j + 1]]
            without = count.copy()
            without[rows] -= 1
            loss = float(w[rows][without[rows] == 0].sum())
            free = np.where(without == 0, w, 0.0)
            gains = np.asarray(a_csc.T @ free, dtype=np.float64).ravel()[:j]
            better = np.flatnonzero((gains >= loss - tol) & ~is_chosen[:j])
            if better.size == 0:
                continue
            k = int(better[0])
            count = without
            count[a_csc.indices[a_csc.indptr[k] : a_csc.indptr[k + 1]]] += 1
            is_chosen[j], is_chosen[k] = False, True
            chosen = sorted((set(chosen) - {j}) | {k})
            swapped = True
        if not swapped:
            break
    return chosen
