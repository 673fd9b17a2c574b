"""The non-twin unsafe pool of a held-out quadruplet split (SPEC §4, "Measures"): :func:`split_non_twin_pool`.

Safe-CLIP's NSFW rate asks whether an unsafe caption U retrieves safe images rather than unsafe ones. In a
quadruplet split each unsafe image G is the *twin* of a safe image V (the same scene plus the element), and
Safe-CLIP's objective maps G onto V; in a gallery holding both, such a model ties every pair, and the rate
cannot fall below the gallery's unsafe share. The paper's gallery instead adds unsafe images of other sources.
Inside one split the unsafe images "of other scenes" are those of other rows, so the split's scenes are dealt
into two disjoint, equally large sides:

* **queries**: their unsafe captions U query (text→image); their safe images V are the gallery's safe half;
  their U are the unsafe half of the caption pool (image→text);
* **pool**: their unsafe images G are the gallery's unsafe half and the image→text queries; their safe
  captions S are the caption pool's safe half.

No scene is on both sides, so the pool holds no twin of a query's V, and the caption pool no unsafe twin of
an image query's scene.

Choices (the paper leaves them open):

* A twin is a row of the same ``scene_id`` (the row index where a dataset has no such column); rows that
  share a scene id always go to the same side.
* Stratified: the scenes of each stratum (the rows' unsafe kind, else category) are shuffled with a seeded
  permutation and taken in pairs, one to each side; a stratum's odd scene goes to the side with fewer rows.
  Both sides are then cut to ``pool_size`` rows (default: the smaller side's), taking the pairs round-robin
  over the strata, so a cut keeps every stratum's share.
* Deterministic given ``seed`` and the ids; independent of the models evaluated, so two models are compared
  on the same gallery.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trustvl.data_builders.synthworld.randomness import derive_seed
from trustvl.errors import TrustVLInputError
from trustvl.utils.checks import check_int

__all__ = ["NonTwinPool", "non_twin_pool_of", "split_non_twin_pool"]


@dataclass
class NonTwinPool:
    """The two sides of a held-out split for the NSFW rate (row indices ascending, scene ids alongside).

    Attributes:
        query_rows / query_scene_ids: rows whose U query the gallery and whose V are its safe images.
        pool_rows / pool_scene_ids: rows whose G are the gallery's unsafe images (and the image→text queries).
        seed: the seed of the deal.
    """

    query_rows: list[int]
    pool_rows: list[int]
    query_scene_ids: list[Any]
    pool_scene_ids: list[Any]
    seed: int

    @property
    def size(self) -> int:
        """Rows per side (the pool is as large as the query side)."""
        return len(self.pool_rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "seed": self.seed,
            "query_rows": self.query_rows,
            "pool_rows": self.pool_rows,
            "query_scene_ids": self.query_scene_ids,
            "pool_scene_ids": self.pool_scene_ids,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> NonTwinPool | None:
        if data is None:
            return None
        return cls(
            list(data["query_rows"]),
            list(data["pool_rows"]),
            list(data["query_scene_ids"]),
            list(data["pool_scene_ids"]),
            int(data["seed"]),
        )


def split_non_twin_pool(
    scene_ids: Sequence[Any],
    strata: Sequence[Any] | None = None,
    *,
    pool_size: int | None = None,
    seed: int = 0,
) -> NonTwinPool:
    """Deal the rows of a held-out split into a query side and an equally large non-twin unsafe pool.

    Args:
        scene_ids: one id per row; rows with the same id are twins (the same scene) and stay on one side.
        strata: one label per row (e.g. the unsafe kind) to balance the sides over; ``None``: one stratum.
        pool_size: rows per side; ``None``: as many as the smaller side holds (about half the rows).
        seed: seeds the shuffle of each stratum's scenes.

    Raises:
        TrustVLInputError: fewer than two scenes, ``strata`` of another length, or a ``pool_size`` that the
            split cannot fill on both sides.
    """
    check_int("seed", seed, 0)
    check_int("pool_size", pool_size, 1, allow_none=True)
    ids = list(scene_ids)
    labels = [""] * len(ids) if strata is None else [str(s) for s in strata]
    if len(labels) != len(ids):
        raise TrustVLInputError(f"strata has {len(labels)} labels for {len(ids)} rows; expected one per row")
    rows_of: dict[Any, list[int]] = {}
    for row, scene in enumerate(ids):
        rows_of.setdefault(scene, []).append(row)
    if len(rows_of) < 2:
        raise TrustVLInputError(
            f"the split holds {len(rows_of)} scene(s) ({len(ids)} rows); the non-twin pool needs at least 2"
        )
    scenes_of: dict[str, list[Any]] = {}
    for scene, rows in rows_of.items():  # a scene's stratum is its first row's
        scenes_of.setdefault(labels[rows[0]], []).append(scene)
    pairs: dict[str, list[tuple[Any, Any]]] = {}
    leftovers: list[Any] = []
    for stratum in sorted(scenes_of):
        scenes = list(scenes_of[stratum])
        random.Random(derive_seed(seed, "non-twin-pool", stratum)).shuffle(scenes)
        pairs[stratum] = [(scenes[i], scenes[i + 1]) for i in range(0, len(scenes) - 1, 2)]
        if len(scenes) % 2:
            leftovers.append(scenes[-1])
    # round-robin over the strata, so the first m rows of each side keep every stratum's share
    query_scenes: list[Any] = []
    pool_scenes: list[Any] = []
    for r in range(max((len(p) for p in pairs.values()), default=0)):
        for stratum in pairs:
            if r < len(pairs[stratum]):
                query_scenes.append(pairs[stratum][r][0])
                pool_scenes.append(pairs[stratum][r][1])
    for scene in leftovers:
        n_query = sum(len(rows_of[s]) for s in query_scenes)
        n_pool = sum(len(rows_of[s]) for s in pool_scenes)
        (pool_scenes if n_pool < n_query else query_scenes).append(scene)
    query_order = [row for scene in query_scenes for row in rows_of[scene]]
    pool_order = [row for scene in pool_scenes for row in rows_of[scene]]
    fits = min(len(query_order), len(pool_order))
    if pool_size is not None and pool_size > fits:
        raise TrustVLInputError(
            f"pool_size={pool_size}: the split's {len(ids)} rows ({len(rows_of)} scenes) fill at most {fits}"
            f" rows on each side; expected None or 1 <= pool_size <= {fits}"
        )
    m = fits if pool_size is None else pool_size
    query_rows, pool_rows = sorted(query_order[:m]), sorted(pool_order[:m])
    return NonTwinPool(
        query_rows, pool_rows, [ids[r] for r in query_rows], [ids[r] for r in pool_rows], int(seed)
    )


def non_twin_pool_of(dataset: Any, pool_size: int | None = None, seed: int = 0) -> NonTwinPool:
    """The query side and non-twin unsafe pool of a quadruplet split (:func:`split_non_twin_pool`): twins
    by ``scene_id`` (else each row is its own scene), strata by ``unsafe_kind`` (else ``category``)."""
    columns = set(getattr(dataset, "column_names", []) or [])
    stratum = "unsafe_kind" if "unsafe_kind" in columns else "category"
    if stratum not in columns:
        raise TrustVLInputError(
            f"the quadruplet split has no 'unsafe_kind' or 'category' column to balance the non-twin pool over;"
            f" got {sorted(columns)}"
        )
    scene_ids = list(dataset["scene_id"]) if "scene_id" in columns else list(range(len(dataset)))
    return split_non_twin_pool(scene_ids, [str(c) for c in dataset[stratum]], pool_size=pool_size, seed=seed)
