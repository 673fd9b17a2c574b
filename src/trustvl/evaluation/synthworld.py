"""Evaluate a CLIP-style model on SynthWorld's balanced test split, in memory.

Reports what the SynthWorld issues ask for: zero-shot occupation top-1 (prompts "a photo of a
{occupation}"), per-group and worst-group accuracy (occupation × attribute), Recall@K between images
and their context captions, and the fairness of occupation-prompt retrieval per attribute (MaxSkew@k,
MinSkew@k, NDKL against the uniform target — the test split is balanced, so uniform is also its
demographic parity target).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.audit import AttributeColumn, score_attributes


@dataclass(frozen=True)
class SynthWorldTestSet:
    images: np.ndarray  # uint8 [n, H, W, 3]
    occupation: np.ndarray  # int64 [n]
    attributes: dict[str, np.ndarray]
    captions: tuple[str, ...]
    occupations: tuple[str, ...]
    attribute_levels: dict[str, tuple[str, ...]]


@lru_cache(maxsize=4)
def synthworld_test_set(n: int, world_seed: int = 0, resolution: int = 64) -> SynthWorldTestSet:
    """The first ``n`` scenes of the balanced test split (cached per arguments)."""
    from trustvl.data_builders.synthworld import SynthWorldConfig, SynthWorldRenderer, sample_caption

    renderer = SynthWorldRenderer(SynthWorldConfig(resolution=resolution), seed=world_seed)
    cfg = renderer.config
    batch = renderer.render_batch("test", 0, n)
    occ_index = {o: i for i, o in enumerate(cfg.occupations)}
    levels = {a: tuple(v) for a, v in cfg.attributes.items()}
    attrs = {
        a: np.asarray([levels[a].index(s.attributes[a]) for s in batch.specs], dtype=np.int64) for a in levels
    }
    return SynthWorldTestSet(
        images=batch.images,
        occupation=np.asarray([occ_index[s.occupation] for s in batch.specs], dtype=np.int64),
        attributes=attrs,
        captions=tuple(sample_caption(s) for s in batch.specs),
        occupations=tuple(cfg.occupations),
        attribute_levels=levels,
    )


@torch.no_grad()
def evaluate_on_synthworld(
    model: Any,
    processor: Any,
    *,
    n_test: int = 4000,
    world_seed: int = 0,
    resolution: int = 64,
    ks: tuple[int, ...] = (10, 100),
    batch_size: int = 512,
    recall_ks: tuple[int, ...] = (1, 5, 10),
    n_recall: int = 1000,
    image_embeds: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` on the balanced SynthWorld test split (see module docstring)."""
    from trustvl.data_builders.synthworld import occupation_prompt
    from trustvl.metrics import recall_at_k, worst_group_accuracy, zero_shot_accuracy
    from trustvl.modeling.clip_components import normalize_uint8
    from trustvl.modeling.embedding import embed_pixel_values, embed_texts

    ts = synthworld_test_set(n_test, world_seed, resolution)
    was_training = model.training
    model.eval()
    if image_embeds is None:
        image_embeds = embed_pixel_values(
            model, normalize_uint8(ts.images, processor.image_processor), batch_size=batch_size
        )
    prompts = [occupation_prompt(o) for o in ts.occupations]
    text = embed_texts(model, processor, prompts)
    scores = text @ image_embeds.T  # [n_occupations, n]
    labels = torch.as_tensor(ts.occupation)
    correct = scores.argmax(0).numpy() == ts.occupation
    out: dict[str, Any] = {
        "n_test": n_test,
        "zero_shot_top1": float(zero_shot_accuracy(scores.T, labels)),
        "per_occupation_accuracy": {
            o: float(correct[ts.occupation == i].mean()) for i, o in enumerate(ts.occupations)
        },
    }
    attrs = [AttributeColumn(a, ts.attributes[a], list(ts.attribute_levels[a])) for a in ts.attribute_levels]
    out["worst_group_accuracy"] = {
        a.name: float(worst_group_accuracy(correct, ts.occupation, a.values)) for a in attrs
    }
    fair = score_attributes(scores, attrs, [k for k in ks if k <= n_test], "uniform")
    out["fairness"] = {
        name: {
            "mean_ndkl": v["mean_ndkl"],
            **{f"mean_max_skew@{k}": v["at_k"][k]["mean_max_skew"] for k in v["at_k"]},
            **{f"mean_min_skew@{k}": v["at_k"][k]["mean_min_skew"] for k in v["at_k"]},
        }
        for name, v in fair.items()
    }
    m = min(n_recall, n_test)
    if m == 0:  # n_recall=0: fairness and accuracy only (no caption embedding)
        model.train(was_training)
        return out
    cap = embed_texts(model, processor, list(ts.captions[:m]))
    sim = cap @ image_embeds[:m].T  # [n_texts, n_images]; caption i describes image i
    out["recall"] = {
        f"text_to_image_R@{k}": float(recall_at_k(sim, k, direction="text_to_image")) for k in recall_ks
    }
    out["recall"].update(
        {f"image_to_text_R@{k}": float(recall_at_k(sim, k, direction="image_to_text")) for k in recall_ks}
    )
    model.train(was_training)
    return out


def fairness_over_galleries(
    model: Any,
    processor: Any,
    world_seeds: tuple[int, ...] | list[int] = (0, 1, 2),
    *,
    n_test: int = 4000,
    k: int = 100,
) -> dict[str, Any]:
    """Zero-shot accuracy and, per attribute, mean MaxSkew@k and mean NDKL, averaged over the balanced test
    galleries of several world seeds.

    One gallery is a noisy judge of small skews: on a 4,000-image gallery a ranking that is random within
    each occupation still scores MaxSkew@100 ≈ 0.16 with a standard deviation of ≈ 0.02 between draws, so
    effect sizes near that floor should be read off several galleries. Returns ``{"zero_shot_top1": ...,
    attribute: {"max_skew": ..., "ndkl": ...}, "per_gallery": [...]}``.
    """
    if not world_seeds:
        raise TrustVLInputError(f"world_seeds={list(world_seeds)!r} is empty; expected at least one seed")
    per = []
    for s in world_seeds:
        m = evaluate_on_synthworld(model, processor, n_test=n_test, world_seed=int(s), ks=(k,), n_recall=0)
        per.append(
            {
                "world_seed": int(s),
                "zero_shot_top1": m["zero_shot_top1"],
                **{
                    a: {"max_skew": v[f"mean_max_skew@{k}"], "ndkl": v["mean_ndkl"]}
                    for a, v in m["fairness"].items()
                },
            }
        )
    out: dict[str, Any] = {"zero_shot_top1": float(np.mean([p["zero_shot_top1"] for p in per]))}
    for a in per[0]:
        if a not in ("world_seed", "zero_shot_top1"):
            out[a] = {m: float(np.mean([p[a][m] for p in per])) for m in ("max_skew", "ndkl")}
    out["per_gallery"] = per
    return out


def effect_vs_base(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Relative drop (%, positive = fairer) of each attribute's ``max_skew`` and ``ndkl`` and the zero-shot
    change (points) of ``other`` against ``base``, both :func:`fairness_over_galleries` results."""
    attrs = [a for a in base if a not in ("zero_shot_top1", "per_gallery")]
    return {
        "drop_pct": {
            a: {m: round(100 * (1 - other[a][m] / base[a][m]), 1) for m in ("max_skew", "ndkl")}
            for a in attrs
        },
        "zero_shot_change_points": round(100 * (other["zero_shot_top1"] - base["zero_shot_top1"]), 2),
    }
