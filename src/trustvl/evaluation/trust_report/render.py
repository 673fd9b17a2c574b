"""The trust report's page: one :class:`~trustvl.evaluation.report.Report` (HTML + Markdown, trustvl's one
report writer) holding every axis of the model and, with a baseline, the paired verdicts.

Every number is shown with its 95 % interval (:func:`trustvl.evaluation.wording.value_text`) and every change
with its paired interval and verdict (:func:`~trustvl.evaluation.wording.change_text`); names are plain
("skin tone", "NSFW rate@10 text→image"). The page is one column at most 1,100 px wide (readable at 1,280 px).
"""

from __future__ import annotations

from pathlib import Path

from trustvl.evaluation.plots import plot_group_shares
from trustvl.evaluation.report import Figure, Report, Table
from trustvl.evaluation.tables import fairness_summary_table
from trustvl.evaluation.trust_report.cluster_pull import pulls_beyond_noise
from trustvl.evaluation.trust_report.schema import (
    AXES,
    ClusterFinding,
    Estimate,
    ModelTrustReport,
    TrustReport,
)
from trustvl.evaluation.wording import UNCERTAINTY_NOTE, attribute_name, change_text, value_text

__all__ = [
    "AXIS_TITLES",
    "BETTER_WHEN",
    "glance_table",
    "trust_report_page",
    "verdict_lines",
    "verdict_table",
]

AXIS_TITLES = {"bias": "Social bias", "safety": "Unsafe content", "spurious": "Spurious features"}


def _text(e: Estimate | None) -> str:
    return "—" if e is None else value_text(e.value, e.interval)


def _headline(report: ModelTrustReport, axis: str) -> list[tuple[str, Estimate | None]]:
    """The one or two numbers that sum an axis up, for the at-a-glance table."""
    if axis == "bias" and report.bias is not None:
        ev, k = report.bias.audit.evaluation, report.bias.k
        out = []
        for name, a in ev.fairness.items():
            s = a.at_k[k]
            out.append((f"{attribute_name(name)} MaxSkew@{k}", Estimate(s.max_skew, s.max_skew_interval)))
        if report.bias.zero_shot_top1 is not None:
            out.append(("zero-shot top-1", report.bias.zero_shot_top1))
        return out
    if axis == "safety" and report.safety is not None:
        s = report.safety
        return [
            (f"NSFW rate@{s.nsfw_k} text→image (chance {s.chance:.3f})", s.nsfw_rate_text_to_image),
            (f"NSFW rate@{s.nsfw_k} image→text (chance {s.chance:.3f})", s.nsfw_rate_image_to_text),
            ("unsafe vs safe separability, image (AUROC)", s.separability["image"]),
        ] + (
            [
                (
                    f"NSFW excess@{s.nsfw_k} text→image (rate − element-free control)",
                    s.control.excess_text_to_image,
                )
            ]
            if s.control is not None
            else []
        )
    if axis == "spurious" and report.spurious is not None:
        sp = report.spurious
        out = [("zero-shot accuracy on the RaVL images", sp.image_accuracy)]
        if sp.clusters:
            top = sp.clusters[0]
            out.append((f"top cluster score Σ|gap| (cluster {top.cluster_id})", top.score))
        f = sp.feature
        if f is not None and f.pull is not None:
            label = f"top cluster's feature: pull towards {f.towards} (with minus without)"
            out.append((label, f.pull))
        return out
    return []


def glance_table(report: TrustReport) -> Table:
    """Axis, metric, the model's value [95 %] (and the baseline's), or the reason an axis was skipped."""
    base = report.baseline
    headers = ["axis", "metric", "model [95% interval]"] + (["baseline [95% interval]"] if base else [])
    rows = []
    for axis in AXES:
        lines = _headline(report.model, axis)
        if not lines:
            reason = report.model.skipped.get(axis, "not run")
            rows.append([AXIS_TITLES[axis], f"skipped: {reason}", "—"] + (["—"] if base else []))
            continue
        base_lines = dict(_headline(base, axis)) if base else {}
        for label, e in lines:
            rows.append(
                [AXIS_TITLES[axis], label, _text(e)] + ([_text(base_lines.get(label))] if base else [])
            )
    return Table(headers, rows)


#: how the verdict table names a metric's better direction (``MetricVerdict.lower_is_better``)
BETTER_WHEN = {True: "lower", False: "higher", None: "no direction (diagnostic)"}


def verdict_lines(report: TrustReport) -> list[str]:
    """One line per axis: how many metrics are better / worse / within noise (and, for metrics without a
    better direction, how many changed), and which changed."""
    lines = []
    for axis in AXES:
        verdicts = [v for v in report.verdicts if v.axis == axis]
        if not verdicts:
            continue
        counts = {w: sum(v.verdict == w for v in verdicts) for w in ("better", "worse", "within noise")}
        moved = sum(v.verdict in ("higher", "lower") for v in verdicts)
        changed = "; ".join(
            f"{v.metric}: {v.verdict}" for v in verdicts if v.verdict not in ("within noise", "no interval")
        )
        lines.append(
            f"**{AXIS_TITLES[axis]}**: {counts['better']} better, {counts['worse']} worse, {counts['within noise']}"
            f" within noise"
            + (f", {moved} changed without a better direction" if moved else "")
            + f" of {len(verdicts)} metrics"
            + (f" ({changed})." if changed else ".")
        )
    return lines


def verdict_table(report: TrustReport) -> Table:
    rows = [
        [
            AXIS_TITLES[v.axis],
            v.metric,
            BETTER_WHEN[v.lower_is_better],
            _text(v.baseline),
            _text(v.model),
            change_text(v.change, v.model.value - v.baseline.value),
        ]
        for v in report.verdicts
    ]
    return Table(
        [
            "axis",
            "metric",
            "better when",
            "baseline [95%]",
            "model [95%]",
            "change (model − baseline) [95%], verdict",
        ],
        rows,
    )


def _bias_blocks(r: ModelTrustReport, stage: Path, prefix: str) -> list:
    b = r.bias
    ev, k = b.audit.evaluation, b.k
    blocks: list = [
        f"Gallery `{b.audit.dataset}` ({ev.n_images} images), {len(ev.prompts)} prompts, target {ev.target}."
        " Lower MaxSkew, |MinSkew| and NDKL are fairer; the floor is what rankings random within each class score.",
        fairness_summary_table(ev),
    ]
    if b.zero_shot_top1 is not None:
        rows = [["zero-shot top-1", _text(b.zero_shot_top1)]]
        rows += [
            [f"worst-group accuracy (class × {attribute_name(a)})", _text(e)]
            for a, e in b.worst_group_accuracy.items()
        ]
        blocks.append(Table(["metric", "value [95% interval]"], rows))
    blocks.append(
        f"**Direction** at k={k}: per prompt, the group most over-represented in the top {k} (its share against"
        " its target share), its skew ln(share/target) with its interval, and how often the same group comes"
        " first over the bootstrap resamples."
    )
    rows = [
        [
            d.prompt,
            attribute_name(d.attribute),
            d.level,
            f"{d.share:.3f} ({d.target:.3f})",
            _text(d.skew),
            "—" if d.stability is None else f"{100 * d.stability:.0f}%",
        ]
        for d in b.directions
    ]
    blocks.append(
        Table(
            [
                "prompt",
                "attribute",
                "over-represented",
                f"share of top {k} (target)",
                "skew [95%]",
                "same group first in resamples",
            ],
            rows,
        )
    )
    for name, a in ev.fairness.items():
        png = plot_group_shares(
            stage / "plots" / f"{prefix}shares_{name}.png",
            ev.prompts,
            a.values,
            a.at_k[k].top_k_shares,
            a.target,
            f"{attribute_name(name)}: group shares of the top {k}",
            floor_shares=a.at_k[k].floor_shares,
        )
        blocks.append(Figure(png.relative_to(stage).as_posix(), f"group shares of the top {k} for {name}"))
    return blocks


def _safety_blocks(r: ModelTrustReport) -> list:
    s = r.safety
    rows = [
        [f"NSFW rate@{s.nsfw_k} text→image", _text(s.nsfw_rate_text_to_image)],
        [f"NSFW rate@{s.nsfw_k} image→text", _text(s.nsfw_rate_image_to_text)],
    ]
    c = s.control
    if c is not None:
        rows += [
            [f"element-free control: NSFW rate@{s.nsfw_k} text→image", _text(c.nsfw_rate_text_to_image)],
            [f"element-free control: NSFW rate@{s.nsfw_k} image→text", _text(c.nsfw_rate_image_to_text)],
            [f"NSFW excess@{s.nsfw_k} text→image (rate − control)", _text(c.excess_text_to_image)],
            [f"NSFW excess@{s.nsfw_k} image→text (rate − control)", _text(c.excess_image_to_text)],
            [
                f"safe-query shift@{s.nsfw_k} text→image (with the element − without)",
                _text(c.safe_query_shift_text_to_image),
            ],
            [
                f"safe-query shift@{s.nsfw_k} image→text (with the element − without)",
                _text(c.safe_query_shift_image_to_text),
            ],
        ]
    rows += [
        ["unsafe vs safe separability, image tower (AUROC)", _text(s.separability["image"])],
        ["unsafe vs safe separability, text tower (AUROC)", _text(s.separability["text"])],
    ]
    sensitive = (
        s.nsfw_rate_text_to_image.interval is not None and s.nsfw_rate_text_to_image.interval.low > s.chance
    )
    headers = ["category", "queries", f"NSFW rate@{s.nsfw_k} text→image", f"NSFW rate@{s.nsfw_k} image→text"]
    if c is not None:
        headers += ["excess text→image", "excess image→text"]
    categories = [
        [k, v["text_to_image"].n, _text(v["text_to_image"]), _text(v["image_to_text"])]
        + (
            [
                _text(c.per_category_excess[k]["text_to_image"]),
                _text(c.per_category_excess[k]["image_to_text"]),
            ]
            if c is not None
            else []
        )
        for k, v in s.per_category.items()
    ]
    return [
        f"Probe: {s.probe} ({s.n_safe} safe, {s.n_unsafe} unsafe rows). NSFW rate: the share of unsafe items in"
        f" the top {s.nsfw_k} retrieved for each unsafe query (its own row left out); a model blind to safety"
        f" scores about the chance rate {s.chance:.3f}. Separability 0.5: unsafe and safe content are not told"
        " apart."
        + (
            " Element-free control: the same rates with each unsafe scene shown and captioned without its"
            " element; the excess (rate − control, per query) is what the unsafe element itself does to"
            " retrieval, 0 for a model that ignores it, lower is safer. The rate alone also moves with the"
            " scenes drawn and with how sharply the model matches content. The safe-query shift is the same"
            " swap seen by the safe queries: an excess that falls with it means the element's items are ranked"
            " lower for every query, not kept from the unsafe ones."
            if c is not None
            else " Lower is safer (no element-free control on this probe: the rate also moves with how sharply"
            " the model matches content)."
        ),
        "**The model retrieves unsafe images for unsafe captions above chance (unsafe-sensitive).**"
        if sensitive
        else "The text→image NSFW rate is not above chance beyond its interval.",
        Table(["metric", "value [95% interval]"], rows),
        Table(headers, categories),
    ]


def _pull_text(c: ClusterFinding) -> str:
    if c.pull is None:
        return f"— ({c.pull_note})" if c.pull_note else "—"
    return f"{c.favoured_class} {_text(c.pull)}"


def _spurious_blocks(r: ModelTrustReport) -> list:
    sp = r.spurious
    blocks: list = [
        f"RaVL discovery on the first {sp.n_images} images of `{sp.dataset}` (label `{sp.label_column}`),"
        f" {sp.n_regions} grid regions, {sp.n_clusters} clusters: {sp.message}. Score Σ|gap| over the classes"
        " (RaVL's accuracy gap of images with vs without the cluster's regions); a negative gap hurts that class."
        " Pull: towards the class the cluster favours (its largest positive gap), the share of other classes'"
        " images called that class, with the cluster's regions minus without (lower is better).",
    ]
    rows = [
        [
            c.rank,
            c.cluster_id,
            _text(c.score),
            f"{c.influence:.2f}",
            c.size,
            c.n_images_in,
            "; ".join(f"{g.class_name} {_text(g.gap)}" for g in c.classes_hurt) or "—",
            _pull_text(c),
        ]
        for c in sp.clusters
    ]
    blocks.append(
        Table(
            [
                "rank",
                "cluster",
                "score Σ|gap| [95%]",
                "influence",
                "regions",
                "images",
                "classes hurt: gap [95%]",
                "favours: pull [95%]",
            ],
            rows,
        )
    )
    f = sp.feature
    if f is not None:
        pull = (
            f"It pulls other classes' images towards {f.towards} most: {_text(f.pull)} (share called"
            f" {f.towards} with the feature minus without; lower is better)."
            if f.pull is not None
            else f"No pull: {f.pull_note}."
        )
        blocks.append(
            f"The top cluster's feature: its regions and every region, in any cluster, whose embedding carries"
            f" at least {f.share:.0%} of cluster {f.top_cluster_id}'s own direction: {f.n_regions} regions in"
            f" {f.n_images_in} images. {pull}"
        )
    for c in sp.clusters:
        if c.thumbnails:
            blocks.append(Figure(c.thumbnails, f"regions of cluster {c.cluster_id} (rank {c.rank})"))
    return blocks


def _model_sections(page: Report, r: ModelTrustReport, stage: Path, who: str, prefix: str) -> None:
    for axis in AXES:
        title = f"{AXIS_TITLES[axis]} — {who}"
        if getattr(r, axis) is None:
            page.add(title, f"Skipped: {r.skipped.get(axis, 'not requested')}.")
        elif axis == "bias":
            page.add(title, *_bias_blocks(r, stage, prefix))
        elif axis == "safety":
            page.add(title, *_safety_blocks(r))
        else:
            page.add(title, *_spurious_blocks(r))


def _pull_skipped(report: TrustReport) -> list[str]:
    """Why the pull of the baseline's top-cluster feature is not among the verdicts, when it is not."""
    sp = report.baseline.spurious
    if report.model.spurious is None or sp is None or sp.feature is None:
        return []
    f = sp.feature
    if f.pull is None:
        reason = f.pull_note
    elif not pulls_beyond_noise(f.pull):
        reason = (
            f"it does not pull other classes' images towards any class beyond noise (largest: {f.towards}"
            f" {value_text(f.pull.value, f.pull.interval)})"
        )
    else:
        return []
    return [
        f"The pull of the baseline's top-cluster feature (cluster {f.top_cluster_id}) is not compared: {reason}."
    ]


def trust_report_page(report: TrustReport, stage: Path) -> Report:
    """The page (its figures written into ``stage``)."""
    model = report.model.model
    title = f"Trust report: `{model}`" + (f" vs `{report.baseline.model}`" if report.baseline else "")
    u = report.uncertainty
    intro = [
        "Three axes on one model: social bias in retrieval, unsafe content, spurious region features."
        + (
            " Every change is the model minus the baseline on the same resamples: better or worse only when its"
            " paired interval excludes 0, otherwise within noise; a metric without a better direction (a"
            " diagnostic) reads higher or lower instead."
            if report.baseline
            else ""
        ),
        UNCERTAINTY_NOTE
        + (
            ""
            if u is None
            else f" Here: {100 * u.level:g}% intervals from {u.n_resamples} resamples (seed {u.seed})."
        ),
    ]
    page = Report(title, intro)
    page.add("At a glance", glance_table(report))
    if report.baseline is not None:
        page.add("Model vs baseline", *verdict_lines(report), *_pull_skipped(report), verdict_table(report))
    _model_sections(page, report.model, stage, "model", "")
    if report.baseline is not None:
        _model_sections(page, report.baseline, stage, "baseline", "baseline_")
    return page
