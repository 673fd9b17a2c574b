"""Which grid cells are inpainted for each base image: the balanced design ``"balanced-v1"``
(:func:`balanced_design`; defined in :mod:`~trustvl.data_builders.cf_alpha.config`, "Variants per base")."""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["VARIANT_DESIGN", "balanced_design"]

#: Name of the rule that picks a base's grid cells (part of the content fingerprint, so a build resumed
#: with another rule is refused instead of mixing two designs).
VARIANT_DESIGN = "balanced-v1"

_DESIGN_CACHE: dict[tuple, list[tuple[int, ...]]] = {}


def balanced_design(
    levels: tuple[int, ...], n: int, seed: int, ctx: int, n_reps: int, tries: int = 16
) -> list[tuple[int, ...]]:
    """The first ``n_reps`` balanced cell sets of context ``ctx`` (see the module doc), cached."""
    key = (levels, n, seed, ctx)
    sets = _DESIGN_CACHE.setdefault(key, [])
    if len(sets) >= n_reps:
        return sets
    grid = np.array(list(itertools.product(*(range(k) for k in levels))))  # [n_cells, n_attrs]
    n_cells, offsets = len(grid), np.cumsum([0, *levels])[:-1]
    onehot = np.zeros((n_cells, sum(levels)))
    quota = np.zeros(sum(levels))
    for a, k in enumerate(levels):
        onehot[np.arange(n_cells), offsets[a] + grid[:, a]] = 1
        quota[offsets[a] : offsets[a] + k] = -(-n // k)  # ceil(n / levels): the most one level may take
    usage = np.zeros(n_cells)
    for s in sets:
        usage[list(s)] += 1
    for rep in range(len(sets), n_reps):
        best: tuple[tuple[float, float], list[int]] | None = None
        for attempt in range(tries):
            order = np.random.default_rng(np.random.SeedSequence([seed, 2, ctx, rep, attempt])).permutation(
                n_cells
            )
            counts, taken, chosen = np.zeros(sum(levels)), np.zeros(n_cells), []
            for _ in range(n):
                over_quota = (onehot * (counts + 1) > quota).sum(1) + 1e9 * taken
                c = int(np.lexsort((order, usage, onehot @ counts, over_quota))[0])
                chosen.append(c)
                taken[c] = 1
                counts += onehot[c]
            spread = max(np.ptp(counts[o : o + k]) for o, k in zip(offsets, levels))
            score = (float(spread), float(usage[chosen].sum()))
            if best is None or score < best[0]:
                best = (score, chosen)
            if spread <= 1:
                break
        assert best is not None
        usage[best[1]] += 1
        sets.append(tuple(sorted(best[1])))
    return sets
