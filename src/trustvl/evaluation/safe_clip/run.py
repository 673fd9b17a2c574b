"""The ``trustvl eval safe-clip`` job: load the split and the model(s), evaluate, compare, and write
``metrics.json`` and the report atomically (:func:`evaluate_safe_clip`)."""

from __future__ import annotations

import os
from pathlib import Path

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.safe_clip.comparison import compare_evaluations
from trustvl.evaluation.safe_clip.config import SafeCLIPEvalConfig
from trustvl.evaluation.safe_clip.report import safe_clip_report
from trustvl.evaluation.safe_clip.results import SafeCLIPEvalResult
from trustvl.evaluation.safe_clip.retrieval import check_cutoffs, evaluate_quadruplets, non_twin_pool_of
from trustvl.hub.loading import load_dataset_any
from trustvl.modeling.embedding import load_clip
from trustvl.utils.io import atomic_output_dir, write_json

__all__ = ["evaluate_safe_clip"]


def evaluate_safe_clip(cfg: SafeCLIPEvalConfig) -> SafeCLIPEvalResult:
    """Run the Safe-CLIP evaluation (see the package docstring) and write ``cfg.out_dir``."""
    settings = UncertaintySettings.of(int(cfg.n_resamples), int(cfg.seed))
    if cfg.max_rows is not None and cfg.max_rows < 2:
        raise TrustVLInputError(f"max_rows={cfg.max_rows}; expected None or an integer >= 2")
    out = Path(cfg.out_dir).expanduser()
    if out.exists() and any(out.iterdir()) and not cfg.overwrite:
        raise TrustVLInputError(
            f"output folder {str(out)!r} exists and is not empty; pass overwrite (--overwrite)"
        )
    ds = load_dataset_any(cfg.dataset, split=cfg.split)
    if cfg.max_rows is not None and len(ds) > cfg.max_rows:
        ds = ds.select(range(int(cfg.max_rows)))
    # one pool for both models, dealt before any model loads (a bad pool_size fails fast)
    pool = non_twin_pool_of(ds, cfg.pool_size, int(cfg.pool_seed))
    check_cutoffs(len(ds), [int(k) for k in cfg.ks], int(cfg.nsfw_k), pool)
    evaluations = {}
    for key, name in (("safe_clip", cfg.model), ("base", cfg.base_model)):
        if name is None:
            continue
        model, processor = load_clip(os.fspath(name), device=cfg.device)
        evaluations[key] = evaluate_quadruplets(
            model,
            processor,
            ds,
            name=str(name),
            ks=tuple(cfg.ks),
            nsfw_k=cfg.nsfw_k,
            pool=pool,
            uncertainty=settings,
            batch_size=cfg.batch_size,
            progress=cfg.progress,
        )
        del model
    base = evaluations.get("base")
    result = SafeCLIPEvalResult(
        str(cfg.dataset),
        cfg.split,
        len(ds),
        settings,
        evaluations["safe_clip"],
        base,
        compare_evaluations(base, evaluations["safe_clip"], settings.level if settings else 0.95)
        if base
        else None,
        pool,
    )
    with atomic_output_dir(out, overwrite=cfg.overwrite) as stage:
        write_json(stage / "metrics.json", result.to_dict())
        report = safe_clip_report(result, stage)
        report.write(stage)
    return result
