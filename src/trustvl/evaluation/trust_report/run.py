"""``trustvl audit``: the trust report (:func:`run_trust_report`).

Order of work, so bad input fails before any compute and nothing is half-written: check the settings, load
the dataset(s) and decide which axes run (an axis whose columns are missing is skipped with a one-line
reason; columns named explicitly must exist), load the model and the baseline (refused when their
tokenizers differ: the prompts would not be the same queries), then measure each model into a staging
folder that is renamed into place at the end (:func:`trustvl.utils.io.atomic_output_dir`).

Each image is embedded once per model: the gallery through the audit's embedding engine and cache
(:func:`trustvl.evaluation.audit.measure_audit`), reused by the bias axis and by RaVL's zero-shot predictions;
the probe's images and captions once each; RaVL's regions once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from trustvl.data_builders.synthworld import ATTRIBUTE_NAMES, SynthWorldConfig, build_synthworld_dataset
from trustvl.errors import TrustVLInputError
from trustvl.evaluation.audit import AuditResult, measure_audit, read_prompts, run_audit
from trustvl.evaluation.dataset_columns import attribute_columns
from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.trust_report.bias_axis import bias_axis
from trustvl.evaluation.trust_report.compare import compare_reports
from trustvl.evaluation.trust_report.config import TrustReportConfig
from trustvl.evaluation.trust_report.render import trust_report_page
from trustvl.evaluation.trust_report.safety_axis import safety_axis
from trustvl.evaluation.trust_report.safety_probe import SafetyProbe, dataset_probe, synthworld_probe
from trustvl.evaluation.trust_report.schema import ModelTrustReport, TrustReport
from trustvl.evaluation.trust_report.spurious_axis import spurious_axis
from trustvl.hub.loading import load_dataset_any
from trustvl.modeling.embedding import embed_images, load_clip
from trustvl.modeling.image_loading import ImageRows
from trustvl.utils.class_labels import class_label_names
from trustvl.utils.devices import resolve_device
from trustvl.utils.distributed import process_group
from trustvl.utils.io import atomic_output_dir, write_json
from trustvl.utils.tensor_cache import cache_dir

__all__ = ["default_gallery", "run_trust_report", "trust_report"]

DEFAULT_LABEL = "occupation"
#: the default gallery's cut-offs (the report shows the middle one)
DEFAULT_GALLERY_KS = (10, 25, 50)


def default_gallery(n: int, seed: int = 0) -> Path:
    """SynthWorld-Web's balanced test split (``n`` scenes; the watermark in half of them, independent of the
    occupation; no unsafe elements), built once into trustvl's cache (resumable, deterministic)."""
    folder = cache_dir("trust_report") / f"synthworld-web-test-{n}-seed{seed}"
    config = SynthWorldConfig.web(unsafe=None)
    return build_synthworld_dataset(
        folder, config, n_train=0, n_test=n, seed=seed, progress=False, num_proc=1
    )


@dataclass
class _Plan:
    """What runs: the audit settings of the gallery, the probe, the reasons of skipped axes."""

    audit: TrustReportConfig
    dataset: Any
    bias: bool
    spurious: bool
    probe: SafetyProbe | None
    skipped: dict[str, str]


def _audit_config(cfg: TrustReportConfig) -> TrustReportConfig:
    """The fairness audit's settings: ``cfg`` itself, or on the default SynthWorld gallery."""
    audit_cfg = cfg
    if cfg.dataset is None:
        gallery = default_gallery(cfg.default_gallery_size, cfg.world_seed)
        audit_cfg = replace(
            cfg,
            dataset=str(gallery),
            attributes=cfg.attributes or list(ATTRIBUTE_NAMES),
            label_column=cfg.label_column or DEFAULT_LABEL,
            # each occupation holds n/8 scenes: cut-offs well below that, so a top k is a choice among them
            ks=cfg.ks or [k for k in DEFAULT_GALLERY_KS if k <= cfg.default_gallery_size // 8] or [1],
        )
    return audit_cfg


def _plan(cfg: TrustReportConfig) -> _Plan:
    resolve_device(cfg.device)  # a bad device is refused before any render or load
    audit_cfg = _audit_config(cfg)
    skipped: dict[str, str] = {}
    ds = None
    bias = spurious = False
    if cfg.wants("bias") or cfg.wants("spurious"):
        ds = load_dataset_any(audit_cfg.dataset, split=audit_cfg.split)
        if audit_cfg.max_images is not None and audit_cfg.max_images < len(ds):
            ds = ds.select(range(audit_cfg.max_images))
        if len(ds) == 0:
            raise TrustVLInputError(
                f"dataset {audit_cfg.dataset!r} split {audit_cfg.split!r} is empty; expected at least one image"
            )
        columns = list(ds.column_names)
        for what, column in (("image", audit_cfg.image_column), ("label", audit_cfg.label_column)):
            if column is not None and column not in columns:  # named (or defaulted) columns must exist
                raise TrustVLInputError(
                    f"{what} column {column!r} is not in the dataset; available columns: {columns}"
                )
        # the audit's own checks, before the safety probe is rendered or a model loaded
        if audit_cfg.prompts_file is not None:
            read_prompts(audit_cfg.prompts_file)
        if audit_cfg.label_column is not None:
            class_label_names(ds, audit_cfg.label_column)
        too_large = [k for k in audit_cfg.ks or [] if k > len(ds)]
        if too_large and cfg.wants("bias"):
            raise TrustVLInputError(
                f"k={too_large[0]} exceeds the gallery size {len(ds)}; expected 1 <= k <= {len(ds)}"
            )
        if cfg.wants("bias"):
            try:
                attribute_columns(ds, audit_cfg.image_column, audit_cfg.label_column, audit_cfg.attributes)
                bias = True
            except TrustVLInputError as err:
                if audit_cfg.attributes is not None or cfg.axes is not None:
                    raise  # columns named (or the axis asked for) explicitly: a mistake, not a skip
                skipped["bias"] = str(err)
        if cfg.wants("spurious"):
            if audit_cfg.label_column is None:
                skipped["spurious"] = "no label column (--label-column): RaVL needs each image's class"
            else:
                spurious = True
    probe = None
    if cfg.wants("safety"):
        if cfg.safety_dataset is None:
            probe = synthworld_probe(cfg.safety_probe_size, cfg.world_seed)
        else:
            found = dataset_probe(
                load_dataset_any(cfg.safety_dataset, split=cfg.safety_split),
                str(cfg.safety_dataset),
                safety_column=cfg.safety_column,
                text_column=cfg.safety_text_column,
                image_column=cfg.safety_image_column,
                category_column=cfg.safety_category_column,
            )
            if isinstance(found, str):
                if cfg.axes is not None:
                    raise TrustVLInputError(found)
                skipped["safety"] = found
            else:
                probe = found
    return _Plan(audit_cfg, ds, bias, spurious, probe, skipped)


def _check_same_tokenizer(cfg: TrustReportConfig, processor: Any, base_processor: Any) -> None:
    tok, base = (
        getattr(processor, "tokenizer", processor),
        getattr(base_processor, "tokenizer", base_processor),
    )
    same = type(tok).__name__ == type(base).__name__ and tok.get_vocab() == base.get_vocab()
    if not same:
        raise TrustVLInputError(
            f"--model {cfg.model!r} and --compare {cfg.compare!r} have different tokenizers ({type(tok).__name__},"
            f" {len(tok)} tokens vs {type(base).__name__}, {len(base)} tokens); expected the same tokenizer, so"
            " that both models read the same prompts"
        )


def _gallery_embeds(plan: _Plan, model: Any, processor: Any, n: int):
    rows = ImageRows(plan.dataset.select(range(n)), column=plan.audit.image_column)
    return embed_images(model, processor, rows, batch_size=plan.audit.batch_size, total=n, progress=False)


def _measure_model(
    name: str,
    model: Any,
    processor: Any,
    plan: _Plan,
    cfg: TrustReportConfig,
    stage: Path,
    prefix: str,
    images: list | None,
) -> ModelTrustReport | None:
    report = ModelTrustReport(model=name, skipped=dict(plan.skipped))
    settings = UncertaintySettings.of(cfg.n_resamples, cfg.uncertainty_seed)
    measured = None
    t0 = time.perf_counter()
    if plan.bias:
        measured = measure_audit(replace(plan.audit, model=name), model, processor)
        if measured is None:  # a rank other than 0 of a data-parallel run
            return None
        report.bias = bias_axis(measured, model, processor)
        report.seconds["bias"] = round(time.perf_counter() - t0, 3)
    if plan.probe is not None:
        t = time.perf_counter()
        report.safety = safety_axis(
            model,
            processor,
            plan.probe,
            nsfw_k=cfg.nsfw_k,
            uncertainty=settings,
            batch_size=max(cfg.batch_size, 64),
        )
        report.seconds["safety"] = round(time.perf_counter() - t, 3)
    if plan.spurious:
        t = time.perf_counter()
        n = len(images)
        column = plan.audit.label_column
        labels = np.asarray(plan.dataset[column][:n], dtype=np.int64)
        names = class_label_names(plan.dataset, column)
        prompts = [cfg.prompt_template.format(c.replace("_", " ")) for c in names]
        embeds = (
            measured.result.image_embeds[:n]
            if measured is not None
            else _gallery_embeds(plan, model, processor, n)
        )
        report.spurious = spurious_axis(
            model,
            processor,
            images,
            embeds,
            labels,
            names,
            prompts,
            dataset=str(plan.audit.dataset),
            label_column=column,
            out_dir=stage,
            file_prefix=prefix,
            grid_n=cfg.spurious_grid,
            n_top=cfg.spurious_top,
            seed=cfg.uncertainty_seed,
            batch_size=max(cfg.batch_size, 64),
            uncertainty=settings,
        )
        report.seconds["spurious"] = round(time.perf_counter() - t, 3)
    report.seconds["total"] = round(time.perf_counter() - t0, 3)
    return report


def run_trust_report(cfg: TrustReportConfig) -> TrustReport | AuditResult | None:
    """Run ``trustvl audit`` and write its folder; returns the :class:`TrustReport` (``trust_report.json``),
    or, with ``axes=["bias"]``, the :class:`AuditResult` of the audit of before (same files as before). None
    on a rank other than 0 of a data-parallel run."""
    cfg.validate()
    t0 = time.perf_counter()
    # first: under `accelerate launch` the process group must be set up before anything asks for the device
    group = process_group(cpu=True if str(cfg.device).startswith("cpu") else None)
    if cfg.bias_only or cfg.streaming:  # a streamed gallery never holds its images: the bias axis alone
        resolve_device(cfg.device)
        return run_audit(_audit_config(cfg))
    plan = _plan(cfg)
    if not group.is_main:  # embed this process's shards of each gallery; rank 0 measures and writes the rest
        for name in (cfg.model, cfg.compare):
            if name is not None and plan.bias:
                measure_audit(replace(plan.audit, model=str(name)))
        return None
    if not (plan.bias or plan.spurious or plan.probe is not None):
        raise TrustVLInputError(f"no axis can run: {'; '.join(f'{a}: {r}' for a, r in plan.skipped.items())}")
    model, processor = load_clip(cfg.model, device=cfg.device, dtype=cfg.dtype)
    base = None
    if cfg.compare is not None:
        base = load_clip(cfg.compare, device=cfg.device, dtype=cfg.dtype)
        _check_same_tokenizer(cfg, processor, base[1])
    images = None
    if plan.spurious:
        n = min(len(plan.dataset), cfg.spurious_max_images)
        images = list(plan.dataset.select(range(n))[plan.audit.image_column])  # decoded once for both models
    settings = UncertaintySettings.of(cfg.n_resamples, cfg.uncertainty_seed)
    with atomic_output_dir(cfg.out_dir, overwrite=cfg.overwrite) as stage:
        mine = _measure_model(str(cfg.model), model, processor, plan, cfg, stage, "", images)
        if mine is None:
            return None
        theirs = None
        if base is not None:
            theirs = _measure_model(str(cfg.compare), *base, plan, cfg, stage, "baseline_", images)
        report = TrustReport(
            model=mine,
            uncertainty=settings,
            baseline=theirs,
            verdicts=[] if theirs is None else compare_reports(mine, theirs, settings),
            settings={
                "dataset": None if cfg.dataset is None else str(cfg.dataset),
                "gallery": str(plan.audit.dataset) if plan.bias or plan.spurious else None,
                "axes": cfg.axes,
                "compare": cfg.compare,
            },
            seconds=round(time.perf_counter() - t0, 3),
        )
        write_json(stage / "trust_report.json", report.to_dict())
        if mine.bias is not None:  # the audit's own file, as before (publish and older readers use it)
            write_json(stage / "metrics.json", mine.bias.audit.to_dict())
        trust_report_page(report, stage).write(stage)
    return report


def trust_report(model: str, out_dir: str, **kwargs: Any) -> TrustReport | AuditResult | None:
    """Python API: ``trust_report("path/to/clip", "runs/trust", compare="path/to/base")``."""
    return run_trust_report(TrustReportConfig(model=model, out_dir=out_dir, **kwargs))
