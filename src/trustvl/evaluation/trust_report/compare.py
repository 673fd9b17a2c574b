"""Paired verdicts between a model's trust report and its baseline's (``--compare`` / ``--baseline``): one
:class:`~trustvl.evaluation.trust_report.schema.MetricVerdict` per metric of every axis both ran.

A change ``model − baseline`` is "better" / "worse" only when the interval of the paired difference (both
models on the same resamples: the same gallery, probe and images, the same seed) excludes 0
(:func:`trustvl.evaluation.results.metric_change`, :mod:`trustvl.metrics.paired`); otherwise "within noise".

Which way is better, per metric (``MetricVerdict.lower_is_better``; docs/trust_report.md lists the same):

* bias: MaxSkew@k, NDKL lower (True); MinSkew@k higher, i.e. closer to 0 (False); zero-shot top-1 and
  worst-group accuracy higher (False);
* safety: the **NSFW excess** over the element-free control (rate − control, overall and per category)
  lower (True): what the unsafe element itself does to the unsafe queries' retrieval, the scenes held
  fixed. With a control, the NSFW rates themselves have no better direction (None): they also fall when a
  model matches content more sharply or when the probe's scenes happen to favour the safe half, with no
  change in how it treats unsafe content (``trustvl demo``'s CF_α model lowered both rates beyond noise on
  SynthWorld's probe, and their element-free controls by about as much: docs/trust_report.md). Without a
  control (a dataset probe) the NSFW rate is the one safety measure there is and keeps Safe-CLIP's direction,
  lower (True). Separability (AUROC) never has one (None): a model must tell unsafe content apart both to
  retrieve it and to avoid it, so it is a diagnostic;
* spurious: zero-shot accuracy higher (False); the RaVL gap on the baseline's top cluster lower (True); the
  pull of the baseline's top-cluster *feature* (the top cluster's regions and every region in any cluster
  that carries its direction, :mod:`~trustvl.evaluation.trust_report.spurious_feature`) towards the class it
  pulls towards most in the baseline (the share of other classes' images called that class, with the feature
  minus without) lower (True). The gap sums every class's noise and can miss a fix of the one error a
  spurious feature causes, and a feature that k-medoids split over several clusters puts most of its errors
  outside the top cluster; the feature's pull counts those errors
  (:mod:`~trustvl.evaluation.trust_report.cluster_pull` says why a pull). It is compared only when the
  baseline's feature pull lies above 0 beyond noise (otherwise a return to 0 would read worse); the page
  says why when it is not.

A metric without a better direction reads "higher" / "lower" / "within noise", never better or worse.
"""

from __future__ import annotations

from trustvl.evaluation.results import SkewAtK, metric_change
from trustvl.evaluation.trust_report.cluster_pull import pull_towards, pulls_beyond_noise
from trustvl.evaluation.trust_report.schema import Estimate, MetricVerdict, ModelTrustReport
from trustvl.evaluation.trust_report.spurious_axis import cluster_score
from trustvl.evaluation.wording import attribute_name, metric_name

__all__ = ["compare_reports"]


def _verdict(
    axis: str, metric: str, model: Estimate, base: Estimate, level: float, lower_is_better: bool | None
) -> MetricVerdict:
    change = metric_change(
        base.value,
        model.value,
        base.replicates,
        model.replicates,
        level,
        lower_is_better=bool(lower_is_better),
    )
    if change is not None and lower_is_better is None:
        change.verdict = {"better": "higher", "worse": "lower"}.get(change.verdict, change.verdict)
    return MetricVerdict(axis, metric, model, base, change, lower_is_better)


def _skew(s: SkewAtK, which: str, n: int) -> Estimate:
    return Estimate(getattr(s, which), getattr(s, f"{which}_interval"), n, getattr(s, f"{which}_replicates"))


def _bias(model: ModelTrustReport, base: ModelTrustReport, level: float) -> list[MetricVerdict]:
    out = []
    m_ev, b_ev = model.bias.audit.evaluation, base.bias.audit.evaluation
    k, n = base.bias.k, b_ev.n_images
    for name, b in b_ev.fairness.items():
        m = m_ev.fairness.get(name)
        if m is None or k not in m.at_k or k not in b.at_k:
            continue
        label = attribute_name(name)
        for skew, lower_is_better in (("max_skew", True), ("min_skew", False)):
            out.append(
                _verdict(
                    "bias",
                    f"{label} {metric_name(skew, k)}",
                    _skew(m.at_k[k], skew, n),
                    _skew(b.at_k[k], skew, n),
                    level,
                    lower_is_better,
                )
            )
        out.append(
            _verdict(
                "bias",
                f"{label} NDKL",
                Estimate(m.ndkl, m.ndkl_interval, n, m.ndkl_replicates),
                Estimate(b.ndkl, b.ndkl_interval, n, b.ndkl_replicates),
                level,
                True,
            )
        )
    if model.bias.zero_shot_top1 and base.bias.zero_shot_top1:
        out.append(
            _verdict(
                "bias", "zero-shot top-1", model.bias.zero_shot_top1, base.bias.zero_shot_top1, level, False
            )
        )
    for name, b in base.bias.worst_group_accuracy.items():
        if name in model.bias.worst_group_accuracy:
            metric = f"worst-group accuracy ({attribute_name(name)})"
            out.append(_verdict("bias", metric, model.bias.worst_group_accuracy[name], b, level, False))
    return out


def _safety(model: ModelTrustReport, base: ModelTrustReport, level: float) -> list[MetricVerdict]:
    m, b = model.safety, base.safety
    both_controlled = m.control is not None and b.control is not None
    # with a control the raw rate is a diagnostic; without one it is Safe-CLIP's measure, lower is better
    rate_direction = None if both_controlled else True
    k = b.nsfw_k
    out = [
        _verdict(
            "safety",
            f"NSFW rate@{k} text→image",
            m.nsfw_rate_text_to_image,
            b.nsfw_rate_text_to_image,
            level,
            rate_direction,
        ),
        _verdict(
            "safety",
            f"NSFW rate@{k} image→text",
            m.nsfw_rate_image_to_text,
            b.nsfw_rate_image_to_text,
            level,
            rate_direction,
        ),
    ]
    if both_controlled:
        out += [
            _verdict(
                "safety",
                f"NSFW excess@{k} text→image (rate − element-free control)",
                m.control.excess_text_to_image,
                b.control.excess_text_to_image,
                level,
                True,
            ),
            _verdict(
                "safety",
                f"NSFW excess@{k} image→text (rate − element-free control)",
                m.control.excess_image_to_text,
                b.control.excess_image_to_text,
                level,
                True,
            ),
        ]
    for category, rates in b.per_category.items():
        for direction, label in (("text_to_image", "text→image"), ("image_to_text", "image→text")):
            other = m.per_category.get(category, {}).get(direction)
            if other is not None:
                metric = f"NSFW rate@{k} {label}, {category}"
                out.append(_verdict("safety", metric, other, rates[direction], level, rate_direction))
            if both_controlled:
                other = m.control.per_category_excess.get(category, {}).get(direction)
                mine = b.control.per_category_excess.get(category, {}).get(direction)
                if other is not None and mine is not None:
                    metric = f"NSFW excess@{k} {label}, {category}"
                    out.append(_verdict("safety", metric, other, mine, level, True))
    for tower, auroc in b.separability.items():
        if tower in m.separability:
            metric = f"unsafe vs safe separability, {tower} (AUROC)"
            out.append(_verdict("safety", metric, m.separability[tower], auroc, level, None))
    return out


def _spurious(model: ModelTrustReport, base: ModelTrustReport, level: float, settings) -> list[MetricVerdict]:
    m, b = model.spurious, base.spurious
    if m.n_images != b.n_images:
        return []
    out = [
        _verdict(
            "spurious", "zero-shot accuracy (RaVL images)", m.image_accuracy, b.image_accuracy, level, False
        )
    ]
    top = b.clusters[0] if b.clusters else None
    if top is not None and top.member_images is not None and m.correct is not None:
        n_classes = int(max(b.labels.max(), m.labels.max())) + 1
        base_score, _ = cluster_score(top.member_images, b.labels, b.correct, n_classes, settings)
        model_score, _ = cluster_score(top.member_images, m.labels, m.correct, n_classes, settings)
        metric = f"RaVL gap on the baseline's top cluster ({top.cluster_id})"
        out.append(_verdict("spurious", metric, model_score, base_score, level, True))
    return out + _pull(model, base, level, settings)


def _pull(model: ModelTrustReport, base: ModelTrustReport, level: float, settings):
    """The pull of the baseline's feature towards the class it pulls towards in the baseline, both models on
    the same images and resamples; nothing when the baseline has no feature pull above 0 beyond noise, or when
    a model's predictions are not kept."""
    m, b = model.spurious, base.spurious
    feature = b.feature
    if feature is None or feature.towards is None or feature.member_images is None or not b.class_names:
        return []
    if m.predictions is None or b.predictions is None or not pulls_beyond_noise(feature.pull):
        return []
    towards = b.class_names.index(feature.towards)
    base_pull = feature.pull  # measured by the baseline's axis on the same images, settings and resamples
    model_pull = pull_towards(feature.member_images, m.labels, m.predictions, towards, settings)
    if model_pull is None:
        return []
    name = feature.towards
    metric = (
        f"pull of the baseline's top-cluster feature (cluster {feature.top_cluster_id} and alike) towards"
        f" {name} (share of other classes' images called {name}, with the feature minus without)"
    )
    return [_verdict("spurious", metric, model_pull, base_pull, level, True)]


def compare_reports(model: ModelTrustReport, base: ModelTrustReport, settings) -> list[MetricVerdict]:
    """Every metric both reports hold, ``model − base``, with its paired verdict (see the module docstring)."""
    level = settings.level if settings is not None else 0.95
    out: list[MetricVerdict] = []
    if model.bias is not None and base.bias is not None:
        out += _bias(model, base, level)
    if model.safety is not None and base.safety is not None:
        out += _safety(model, base, level)
    if model.spurious is not None and base.spurious is not None:
        out += _spurious(model, base, level, settings)
    return out
