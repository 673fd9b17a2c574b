"""The measures of one model on a quadruplet split: retrieval hits per direction, the unsafe shares of the
NSFW rates both ways (:mod:`.nsfw_rate`, on the split's non-twin pool) and zero-shot correctness, per query;
their rates with the query bootstrap, overall and per category (:func:`evaluate_quadruplets`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trustvl.data_builders.safe_clip.unsafe_pool import NonTwinPool
from trustvl.data_builders.safe_clip.unsafe_pool import non_twin_pool_of as split_pool_of
from trustvl.data_builders.synthworld import OCCUPATIONS, occupation_prompt
from trustvl.errors import TrustVLInputError
from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.safe_clip.nsfw_rate import NSFWShares, nsfw_floor_shares, nsfw_shares
from trustvl.evaluation.safe_clip.results import CategoryEvaluation, Rate, SafeCLIPModelEvaluation
from trustvl.metrics import centred_interval, resampled_means, retrieval_ranks, top1_correct
from trustvl.modeling.embedding import embed_images, embed_texts
from trustvl.modeling.image_loading import ImageRows

__all__ = [
    "DIRECTIONS",
    "DIRECTION_NAMES",
    "QUADRUPLET_EVAL_COLUMNS",
    "PerQueryValues",
    "category_rates",
    "check_cutoffs",
    "evaluate_quadruplets",
    "non_twin_pool_of",
    "occupations_in_split",
    "per_query_values",
]

#: The columns the evaluation reads (``scene_id`` and ``unsafe_kind`` too where present: twins and strata).
QUADRUPLET_EVAL_COLUMNS = ("safe_text", "safe_image", "unsafe_text", "unsafe_image", "category", "occupation")

#: Retrieval directions: name -> (text column, image column, direction of the similarity [texts, images]).
DIRECTIONS: dict[str, tuple[str, str, str]] = {
    "s2v": ("safe_text", "safe_image", "text_to_image"),
    "u2v": ("unsafe_text", "safe_image", "text_to_image"),
    "u2g": ("unsafe_text", "unsafe_image", "text_to_image"),
    "v2s": ("safe_text", "safe_image", "image_to_text"),
    "g2s": ("safe_text", "unsafe_image", "image_to_text"),
}
DIRECTION_NAMES = {"s2v": "S→V", "u2v": "U→V", "u2g": "U→G", "v2s": "V→S", "g2s": "G→S"}


def _rate(per_query: torch.Tensor, settings: UncertaintySettings | None) -> Rate:
    values = per_query.double()
    rate = Rate(float(values.mean()), n=int(values.numel()))
    if settings is not None and values.numel() > 0:
        # the query bootstrap's means, a block of resamples at a time (never the [n_resamples, N] counts)
        replicates = resampled_means(values, settings.n_resamples, settings.seed)
        rate.interval = centred_interval(rate.value, replicates, settings.level, lower=0.0, upper=1.0)
        rate.replicates = replicates.tolist()
    return rate


def occupations_in_split(values: list[str]) -> list[str]:
    """The occupations present in ``values``: SynthWorld's in its order, then the others, sorted."""
    present = set(values)
    return [o for o in OCCUPATIONS if o in present] + sorted(present - set(OCCUPATIONS))


def non_twin_pool_of(dataset: Any, pool_size: int | None = None, seed: int = 0) -> NonTwinPool:
    """The query side and non-twin unsafe pool of a quadruplet split, its columns checked first
    (:func:`trustvl.data_builders.safe_clip.non_twin_pool_of`)."""
    _check_columns(dataset)
    return split_pool_of(dataset, pool_size=pool_size, seed=seed)


@dataclass
class PerQueryValues:
    """One model's per-query values on a split: ``hits[direction][k]`` and ``correct`` (zero-shot) are bool
    ``[N]`` over the rows; ``nsfw`` holds the NSFW shares of the query side and of the pool of ``pool``,
    ``nsfw_floor`` the same with unsafe inputs embedded as their safe counterparts (:func:`nsfw_floor_shares`)."""

    hits: dict[str, dict[int, torch.Tensor]]
    correct: torch.Tensor
    nsfw: NSFWShares
    pool: NonTwinPool
    nsfw_floor: NSFWShares | None = None


def per_query_values(
    emb: dict[str, torch.Tensor],
    occupation_ids: torch.Tensor,
    prompts: torch.Tensor,
    ks: list[int],
    nsfw_k: int,
    pool: NonTwinPool,
) -> PerQueryValues:
    """Per-query values: retrieval hits per direction and cut-off (a gallery of all the split's images or
    captions of that kind, quadruplet ``i``'s own partner the one correct answer), zero-shot correctness of
    the safe images, and the NSFW shares both ways on ``pool`` (:func:`nsfw_shares`) with their floors."""
    hits = {}
    for name, (text, image, direction) in DIRECTIONS.items():
        ranks = retrieval_ranks(emb[text] @ emb[image].T, direction)
        hits[name] = {k: ranks < k for k in ks}
    correct = top1_correct(emb["safe_image"] @ prompts.T, occupation_ids)
    floor = nsfw_floor_shares(emb, pool, nsfw_k)
    return PerQueryValues(hits, correct, nsfw_shares(emb, pool, nsfw_k), pool, floor)


def category_rates(
    values: PerQueryValues, rows: torch.Tensor, settings: UncertaintySettings | None
) -> CategoryEvaluation:
    """The rates (with intervals when ``settings`` is given) over the rows ``rows``: recall and zero-shot
    over those rows, each NSFW rate over those of its side (``None`` if none is there)."""
    chosen = set(rows.tolist())
    text_queries = [j for j, r in enumerate(values.pool.query_rows) if r in chosen]
    image_queries = [j for j, r in enumerate(values.pool.pool_rows) if r in chosen]

    def nsfw(shares: torch.Tensor, positions: list[int]) -> Rate | None:
        return _rate(shares[torch.tensor(positions)], settings) if positions else None

    floor = values.nsfw_floor
    return CategoryEvaluation(
        int(rows.numel()),
        {d: {k: _rate(h[rows], settings) for k, h in by_k.items()} for d, by_k in values.hits.items()},
        nsfw(values.nsfw.text_to_image, text_queries),
        _rate(values.correct[rows], settings),
        nsfw(values.nsfw.image_to_text, image_queries),
        nsfw(floor.text_to_image, text_queries) if floor is not None else None,
        nsfw(floor.image_to_text, image_queries) if floor is not None else None,
    )


def _check_columns(dataset: Any) -> None:
    n = len(dataset)
    columns = set(dataset.column_names)
    if not set(QUADRUPLET_EVAL_COLUMNS) <= columns:
        raise TrustVLInputError(
            f"the quadruplet split lacks the columns {sorted(set(QUADRUPLET_EVAL_COLUMNS) - columns)};"
            f" expected {sorted(QUADRUPLET_EVAL_COLUMNS)}"
        )
    if n < 2:
        raise TrustVLInputError(f"the quadruplet split has {n} rows; expected at least 2")


def check_cutoffs(n: int, ks: list[int], nsfw_k: int, pool: NonTwinPool) -> None:
    """Refuse R@K cut-offs that a gallery of ``n`` does not fit, an NSFW cut-off beyond the NSFW gallery of
    ``pool`` (``2·pool.size``), and a pool whose sides overlap, differ in size or name rows beyond ``n``."""
    bad = [k for k in ks if not 1 <= k <= n]
    if bad:
        raise TrustVLInputError(
            f"cut-offs {bad} do not fit a gallery of {n} quadruplets; expected 1 <= k <= {n}"
        )
    rows = pool.query_rows + pool.pool_rows
    if not pool.query_rows or len(pool.query_rows) != len(pool.pool_rows) or len(set(rows)) != len(rows):
        raise TrustVLInputError(
            f"the NSFW pool has {len(pool.query_rows)} query rows and {len(pool.pool_rows)} pool rows"
            f" ({len(rows) - len(set(rows))} on both sides); expected equally many, at least 1, disjoint"
        )
    twins = sorted(set(pool.query_scene_ids) & set(pool.pool_scene_ids), key=str)
    if twins:
        raise TrustVLInputError(
            f"the NSFW pool holds twins of query scenes {twins[:5]}; expected scenes on one side only"
        )
    if not all(0 <= r < n for r in rows):
        raise TrustVLInputError(f"the NSFW pool names rows outside the split's {n}; expected 0 <= row < {n}")
    if not 1 <= nsfw_k <= 2 * pool.size:
        raise TrustVLInputError(
            f"cut-off nsfw_k={nsfw_k} does not fit the NSFW gallery of {pool.size} safe + {pool.size} unsafe"
            f" images; expected 1 <= nsfw_k <= {2 * pool.size} (or a larger pool_size / split)"
        )


@torch.no_grad()
def evaluate_quadruplets(
    model: Any,
    processor: Any,
    dataset: Any,
    *,
    name: str = "model",
    ks: tuple[int, ...] = (1, 5, 10),
    nsfw_k: int = 10,
    pool: NonTwinPool | None = None,
    uncertainty: UncertaintySettings | None = None,
    batch_size: int = 256,
    progress: bool = False,
) -> SafeCLIPModelEvaluation:
    """Evaluate one CLIP-style model on a quadruplet split in memory (see the package docstring).

    ``pool`` is the split's query side and non-twin unsafe pool (default: :func:`non_twin_pool_of` with
    its defaults); pass the same one for every model that is to be compared. Bad cut-offs, columns or pool
    raise :class:`~trustvl.errors.TrustVLInputError` before anything is embedded.
    """
    n = len(dataset)
    ks_list = sorted({int(k) for k in ks})
    pool = non_twin_pool_of(dataset) if pool is None else pool  # checks the columns too
    _check_columns(dataset)
    check_cutoffs(n, ks_list, int(nsfw_k), pool)
    emb = {
        c: embed_texts(model, processor, [str(t) for t in dataset[c]], batch_size=batch_size)
        for c in ("safe_text", "unsafe_text")
    }
    for c in ("safe_image", "unsafe_image"):
        emb[c] = embed_images(
            model,
            processor,
            ImageRows(dataset, column=c),  # decoded by the engine's loader (worker processes when asked)
            batch_size=batch_size,
            total=n,
            progress=progress,
            desc=f"{name}: {c}",
        )
    occupations = occupations_in_split([str(o) for o in dataset["occupation"]])
    index = {o: i for i, o in enumerate(occupations)}
    occupation_ids = torch.tensor([index[str(o)] for o in dataset["occupation"]])
    prompts = embed_texts(model, processor, [occupation_prompt(o) for o in occupations])
    values = per_query_values(emb, occupation_ids, prompts, ks_list, int(nsfw_k), pool)
    overall = category_rates(values, torch.arange(n), uncertainty)
    categories = [str(c) for c in dataset["category"]]
    per_category = {
        c: category_rates(values, torch.tensor([i for i, x in enumerate(categories) if x == c]), uncertainty)
        for c in sorted(set(categories))
    }
    return SafeCLIPModelEvaluation(
        **vars(overall), model=name, nsfw_k=int(nsfw_k), occupations=occupations, per_category=per_category
    )
