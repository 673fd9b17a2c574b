"""``trustvl audit``: measure retrieval fairness of a CLIP-style model on an attributed image set.

For each concept prompt the model ranks the gallery of images; for each protected attribute the
ranking is scored with MaxSkew@k, MinSkew@k and NDKL (SPEC §1, Geyik et al. 2019) against a target
distribution (uniform = equal opportunity, or the gallery's own proportions = demographic parity).
With a label column, zero-shot accuracy and per-group / worst-group accuracy are reported too.

Outputs (written atomically into ``out_dir``): ``metrics.json``, ``report.md``, ``report.html`` and
``plots/*.png``. Image embeddings are cached on disk keyed by the model's and the dataset's
fingerprints, so a second audit of the same pair skips embedding.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.utils.io import atomic_output_dir, write_json

DEFAULT_KS = (10, 100, 1000)
_DEFAULT_PROMPTS = Path(__file__).resolve().parent.parent / "assets" / "prompts" / "occupations.txt"


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a text file: one per line, blank lines and ``#`` comments skipped."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise TrustVLInputError(
            f"prompts file {str(p)!r} does not exist; expected a text file, one prompt per line"
        )
    prompts = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    prompts = [ln for ln in prompts if ln and not ln.startswith("#")]
    if not prompts:
        raise TrustVLInputError(f"prompts file {str(p)!r} holds no prompts; expected one prompt per line")
    return prompts


def default_prompts() -> list[str]:
    return read_prompts(_DEFAULT_PROMPTS)


@dataclass
class AuditConfig:
    """What to audit and how.

    Attributes:
        model: Hub id or local folder of a CLIP-style model (``AutoModel`` + ``AutoProcessor``).
        dataset: anything ``datasets.load_dataset`` accepts (Hub id, local Parquet/imagefolder folder),
            or a ``.parquet`` file.
        out_dir: folder for the report; must be empty or absent unless ``overwrite``.
        split: dataset split to audit.
        image_column: column holding the images.
        attributes: protected attribute columns; default every ``ClassLabel`` column other than
            ``label_column`` and columns named like ids.
        label_column: optional class column; enables zero-shot and per-group accuracy, and, when no
            prompts are given, the prompts become ``prompt_template`` filled with its class names.
        prompts: concept prompts; default from ``prompts_file`` or the label column, else trustvl's
            default occupation list.
        prompts_file: a text file of prompts, one per line.
        prompt_template: template for class-name prompts.
        ks: cut-offs for MaxSkew/MinSkew. Explicit values must satisfy 1 <= k <= gallery size; the
            default (10, 100, 1000) keeps those that fit the gallery.
        target: ``"uniform"`` (equal opportunity) or ``"gallery"`` (demographic parity).
        batch_size, device, dtype: embedding settings (device ``"auto"``; dtype fp32/bf16/fp16).
        max_images: audit only the first N images of the split.
        cache_dir: embedding cache folder (default ``~/.cache/trustvl/embeddings``); ``use_cache``
            turns the cache off.
        overwrite: replace a non-empty ``out_dir``.
        progress: show progress bars.
    """

    model: str
    dataset: str
    out_dir: str
    split: str = "test"
    image_column: str = "image"
    attributes: list[str] | None = None
    label_column: str | None = None
    prompts: list[str] | None = None
    prompts_file: str | None = None
    prompt_template: str = "a photo of a {}"
    ks: list[int] | None = None
    target: str = "uniform"
    batch_size: int = 64
    device: str = "auto"
    dtype: str | None = None
    max_images: int | None = None
    cache_dir: str | None = None
    use_cache: bool = True
    overwrite: bool = False
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.target not in ("uniform", "gallery"):
            raise TrustVLInputError(
                f"target={self.target!r} is not supported; expected 'uniform' or 'gallery'"
            )
        if self.ks is not None:
            if len(self.ks) == 0:
                raise TrustVLInputError("ks is empty; expected at least one cut-off k >= 1")
            for k in self.ks:
                if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
                    raise TrustVLInputError(f"k={k!r} is not valid; expected a positive integer")
        if self.batch_size <= 0:
            raise TrustVLInputError(f"batch_size={self.batch_size} must be a positive integer")
        if self.max_images is not None and self.max_images <= 0:
            raise TrustVLInputError(f"max_images={self.max_images} must be a positive integer")
        if "{}" not in self.prompt_template:
            raise TrustVLInputError(
                f"prompt_template={self.prompt_template!r} must contain '{{}}' for the class name"
            )


@dataclass
class AttributeColumn:
    name: str
    values: np.ndarray  # int64 [n]
    names: list[str]


def _attribute_columns(ds: Any, cfg: AuditConfig) -> list[AttributeColumn]:
    return attribute_columns(ds, cfg.image_column, cfg.label_column, cfg.attributes)


def attribute_columns(
    ds: Any, image_column: str, label_column: str | None, attributes: list[str] | None
) -> list[AttributeColumn]:
    """The protected attribute columns of ``ds`` as integer codes (validated; see :class:`AuditConfig`)."""
    from datasets import ClassLabel, Value

    features = ds.features
    columns = list(features)
    if image_column not in features:
        raise TrustVLInputError(
            f"image column {image_column!r} is not in the dataset; available columns: {columns}"
        )
    if label_column is not None and label_column not in features:
        raise TrustVLInputError(
            f"label column {label_column!r} is not in the dataset; available columns: {columns}"
        )
    if attributes is not None:
        if len(attributes) == 0:
            raise TrustVLInputError("attributes is empty; expected at least one attribute column")
        names = list(attributes)
        missing = [a for a in names if a not in features]
        if missing:
            raise TrustVLInputError(
                f"attribute column(s) {missing} not in the dataset; available columns: {columns}"
            )
    else:
        names = [
            c
            for c, f in features.items()
            if isinstance(f, ClassLabel) and c != label_column and not c.endswith("_id")
        ]
        if not names:
            raise TrustVLInputError(
                f"the dataset has no ClassLabel attribute columns; name them with attributes (--attributes);"
                f" available columns: {columns}"
            )
    out = []
    for name in names:
        feat = features[name]
        raw = list(ds[name])  # respects select()/filter() index mappings
        if isinstance(feat, ClassLabel):
            values = np.asarray(raw, dtype=np.int64)
            labels = list(feat.names)
        elif isinstance(feat, Value) and (
            feat.dtype.startswith("int") or feat.dtype in ("string", "large_string", "bool")
        ):
            uniq = sorted(set(raw), key=lambda v: (str(type(v)), v))
            index = {v: i for i, v in enumerate(uniq)}
            values = np.asarray([index[v] for v in raw], dtype=np.int64)
            labels = [str(v) for v in uniq]
        else:
            raise TrustVLInputError(
                f"attribute column {name!r} has type {feat}; expected a ClassLabel, integer or string column"
            )
        if len(labels) < 2:
            raise TrustVLInputError(
                f"attribute column {name!r} has {len(labels)} value(s); expected at least 2"
            )
        out.append(AttributeColumn(name, values, labels))
    return out


def _embed_gallery(cfg: AuditConfig, model: Any, processor: Any, ds: Any) -> tuple[torch.Tensor, bool]:
    from trustvl.evaluation.embedding_cache import EmbeddingCache, model_fingerprint
    from trustvl.modeling.embedding import embed_images

    cache = EmbeddingCache(cfg.cache_dir)
    proc_cfg = getattr(getattr(processor, "image_processor", None), "to_dict", lambda: {})()
    key = EmbeddingCache.key(
        model=model_fingerprint(cfg.model, model),
        dataset=getattr(ds, "_fingerprint", None),
        split=cfg.split,
        column=cfg.image_column,
        n=len(ds),
        processor=proc_cfg,
        dtype=str(next(model.parameters()).dtype),
    )
    if cfg.use_cache:
        hit = cache.get(key, expected_rows=len(ds))
        if hit is not None:
            return hit, True
    images = (row[cfg.image_column] for row in ds.select_columns([cfg.image_column]))
    emb = embed_images(
        model, processor, images, batch_size=cfg.batch_size, total=len(ds), progress=cfg.progress
    )
    if cfg.use_cache:
        cache.put(
            key, emb, metadata={"model": str(cfg.model), "dataset": str(cfg.dataset), "split": cfg.split}
        )
    return emb, False


def _target(kind: str, values: np.ndarray, m: int) -> torch.Tensor:
    from trustvl.metrics import gallery_target, uniform_target

    return uniform_target(m) if kind == "uniform" else gallery_target(torch.as_tensor(values), m)


def score_attributes(
    scores: torch.Tensor, attrs: list[AttributeColumn], ks: list[int], target: str = "uniform"
) -> dict[str, Any]:
    """Fairness of the rankings ``scores`` ``[n_prompts, n_images]`` induce, for each attribute.

    Returns, per attribute: value names, target, gallery shares, per-prompt NDKL and, for each k,
    per-prompt MaxSkew/MinSkew, their means and the per-prompt group shares of the top k.
    """
    from trustvl.metrics import max_skew, min_skew, ndkl, rank_labels

    out: dict[str, Any] = {}
    n = scores.shape[1]
    for attr in attrs:
        m = len(attr.names)
        tgt = _target(target, attr.values, m)
        ranked = rank_labels(scores, torch.as_tensor(attr.values))
        per_k = {}
        for k in ks:
            mx, mn = max_skew(ranked, tgt, k), min_skew(ranked, tgt, k)
            shares = torch.nn.functional.one_hot(ranked[:, :k], m).sum(1).double() / k
            per_k[str(k)] = {
                "max_skew": mx.tolist(),
                "min_skew": mn.tolist(),
                "mean_max_skew": float(mx.mean()),
                "mean_min_skew": float(mn.mean()),
                "shares": shares.tolist(),
            }
        nd = ndkl(ranked, tgt)
        out[attr.name] = {
            "values": attr.names,
            "target": tgt.tolist(),
            "gallery_share": (np.bincount(attr.values, minlength=m) / n).tolist(),
            "ndkl": nd.tolist(),
            "mean_ndkl": float(nd.mean()),
            "at_k": per_k,
        }
    return out


def run_audit(cfg: AuditConfig) -> dict[str, Any]:
    """Run an audit and write its report; returns the metrics dict (also in ``metrics.json``)."""
    from trustvl.hub.loading import load_dataset_any
    from trustvl.modeling.embedding import embed_texts, load_clip

    cfg.validate()
    t0 = time.perf_counter()
    ds = load_dataset_any(cfg.dataset, split=cfg.split)
    if cfg.max_images is not None and cfg.max_images < len(ds):
        ds = ds.select(range(cfg.max_images))
    if len(ds) == 0:
        raise TrustVLInputError(
            f"dataset {cfg.dataset!r} split {cfg.split!r} is empty; expected at least one image"
        )
    attrs = _attribute_columns(ds, cfg)
    n = len(ds)
    if cfg.ks is not None:
        bad = [k for k in cfg.ks if k > n]
        if bad:
            raise TrustVLInputError(f"k={bad[0]} exceeds the gallery size {n}; expected 1 <= k <= {n}")
        ks = sorted(set(int(k) for k in cfg.ks))
    else:
        ks = [k for k in DEFAULT_KS if k <= n] or [n]

    label_names: list[str] | None = None
    labels: np.ndarray | None = None
    if cfg.label_column is not None:
        from datasets import ClassLabel

        feat = ds.features[cfg.label_column]
        if not isinstance(feat, ClassLabel):
            raise TrustVLInputError(
                f"label column {cfg.label_column!r} has type {feat}; expected a ClassLabel column"
            )
        label_names = list(feat.names)
        labels = np.asarray(list(ds[cfg.label_column]), dtype=np.int64)

    if cfg.prompts is not None:
        prompts = list(cfg.prompts)
        if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
            raise TrustVLInputError(f"prompts={prompts!r} must be a non-empty list of non-empty strings")
    elif cfg.prompts_file is not None:
        prompts = read_prompts(cfg.prompts_file)
    elif label_names is not None:
        prompts = [cfg.prompt_template.format(name.replace("_", " ")) for name in label_names]
    else:
        prompts = default_prompts()

    model, processor = load_clip(cfg.model, device=cfg.device, dtype=cfg.dtype)
    img_emb, cache_hit = _embed_gallery(cfg, model, processor, ds)
    txt_emb = embed_texts(model, processor, prompts)
    scores = txt_emb @ img_emb.T  # [n_prompts, n_images]
    t_embed = time.perf_counter() - t0

    results: dict[str, Any] = {
        "model": str(cfg.model),
        "dataset": str(cfg.dataset),
        "split": cfg.split,
        "n_images": n,
        "prompts": prompts,
        "ks": ks,
        "target": cfg.target,
        "embedding_cache_hit": cache_hit,
    }
    results["attributes"] = score_attributes(scores, attrs, ks, cfg.target)

    if labels is not None:
        results["zero_shot"] = _zero_shot(cfg, model, processor, label_names, labels, img_emb, attrs)
    results["seconds"] = round(time.perf_counter() - t0, 3)
    results["seconds_embedding"] = round(t_embed, 3)

    with atomic_output_dir(cfg.out_dir, overwrite=cfg.overwrite) as stage:
        write_json(stage / "metrics.json", results)
        _write_report(stage, results)
    return results


def _zero_shot(
    cfg: AuditConfig,
    model: Any,
    processor: Any,
    label_names: list[str],
    labels: np.ndarray,
    img_emb: torch.Tensor,
    attrs: list[AttributeColumn],
) -> dict[str, Any]:
    from trustvl.metrics import worst_group_accuracy, zero_shot_accuracy
    from trustvl.modeling.embedding import embed_texts

    class_prompts = [cfg.prompt_template.format(name.replace("_", " ")) for name in label_names]
    logits = img_emb @ embed_texts(model, processor, class_prompts).T
    out: dict[str, Any] = {
        "class_prompts": class_prompts,
        "top1": float(zero_shot_accuracy(logits, torch.as_tensor(labels))),
    }
    correct = logits.argmax(1).numpy() == labels
    for attr in attrs:
        wg = worst_group_accuracy(correct, labels, attr.values)
        out[f"worst_group_accuracy[{cfg.label_column} x {attr.name}]"] = float(wg)
    return out


def _write_report(stage: Path, results: dict[str, Any]) -> None:
    from trustvl.evaluation.report import (
        html_image,
        html_page,
        html_table,
        markdown_table,
        plot_group_shares,
        plot_skew_per_prompt,
    )

    prompts = results["prompts"]
    summary_rows = []
    for name, a in results["attributes"].items():
        for k, v in a["at_k"].items():
            summary_rows.append([name, int(k), v["mean_max_skew"], v["mean_min_skew"], a["mean_ndkl"]])
    headers = ["attribute", "k", "mean MaxSkew@k", "mean MinSkew@k", "mean NDKL"]
    md = [
        f"# trustvl audit: `{results['model']}`",
        "",
        f"Dataset `{results['dataset']}` (split `{results['split']}`, {results['n_images']} images),"
        f" {len(prompts)} prompts, target: {results['target']}.",
        "",
        "Lower |skew| and lower NDKL are fairer. MaxSkew@k >= 0 is the log-ratio of the most"
        " over-represented group's share of the top k to its target share; MinSkew@k <= 0 likewise for the"
        " most under-represented.",
        "",
        "## Summary",
        "",
        markdown_table(headers, summary_rows),
        "",
    ]
    sections = [("Summary", html_table(headers, summary_rows))]
    if "zero_shot" in results:
        zs = results["zero_shot"]
        rows = [[k, v] for k, v in zs.items() if k != "class_prompts"]
        md += ["## Zero-shot accuracy", "", markdown_table(["metric", "value"], rows), ""]
        sections.append(("Zero-shot accuracy", html_table(["metric", "value"], rows)))
    ks_sorted = sorted(int(k) for k in results["ks"])
    k_plot = str(ks_sorted[len(ks_sorted) // 2])  # the middle cut-off, e.g. 100 of (10, 100, 1000)
    for name, a in results["attributes"].items():
        at = a["at_k"][k_plot]
        skew_png = plot_skew_per_prompt(
            stage / "plots" / f"skew_{name}.png",
            prompts,
            at["max_skew"],
            at["min_skew"],
            f"{name}: skew per prompt at k={k_plot}",
        )
        share_png = plot_group_shares(
            stage / "plots" / f"shares_{name}.png",
            prompts,
            a["values"],
            at["shares"],
            a["target"],
            f"{name}: group shares of the top {k_plot}",
        )
        rows = [[p, mx, mn, nd] for p, mx, mn, nd in zip(prompts, at["max_skew"], at["min_skew"], a["ndkl"])]
        hdr = ["prompt", f"MaxSkew@{k_plot}", f"MinSkew@{k_plot}", "NDKL"]
        rel_skew, rel_share = skew_png.relative_to(stage).as_posix(), share_png.relative_to(stage).as_posix()
        md += [
            f"## {name}",
            "",
            f"Values: {', '.join(a['values'])}.",
            "",
            markdown_table(hdr, rows),
            "",
            f"![skew per prompt]({rel_skew})",
            "",
            f"![group shares]({rel_share})",
            "",
        ]
        sections.append(
            (
                name,
                f"<p>Values: {', '.join(a['values'])}.</p>"
                + html_table(hdr, rows)
                + html_image(rel_skew, f"skew per prompt for {name}")
                + html_image(rel_share, f"group shares for {name}"),
            )
        )
    (stage / "report.md").write_text("\n".join(md), encoding="utf-8")
    intro = (
        f"Model <code>{results['model']}</code> on <code>{results['dataset']}</code> "
        f"({results['n_images']} images, split {results['split']}), target {results['target']}."
    )
    (stage / "report.html").write_text(html_page("trustvl audit", sections, intro), encoding="utf-8")


def audit(model: str, dataset: str, out_dir: str, **kwargs: Any) -> dict[str, Any]:
    """Python API: ``audit("path/to/clip", "path/to/dataset", "runs/audit", attributes=["skin_tone"])``."""
    return run_audit(AuditConfig(model=model, dataset=dataset, out_dir=out_dir, **kwargs))


def config_dict(cfg: AuditConfig) -> dict[str, Any]:
    return asdict(cfg)
