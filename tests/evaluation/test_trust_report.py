"""The trust report (`trustvl audit`, issue 25) on tiny offline models: schema round-trip, each axis run or
skipped with its reason, paired verdicts, bad input, and the page showing every number with its interval."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from trustvl.cli import main
from trustvl.errors import TrustVLInputError
from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.trust_report import (
    SCHEMA_VERSION,
    Estimate,
    ModelTrustReport,
    SafetyAxis,
    TrustReport,
    TrustReportConfig,
    trust_report,
)
from trustvl.evaluation.trust_report.compare import compare_reports
from trustvl.evaluation.trust_report.estimates import auroc, weighted_auroc, worst_group
from trustvl.evaluation.wording import value_text

FAST = dict(progress=False, safety_probe_size=8, nsfw_k=3, spurious_max_images=24, n_resamples=50, ks=[5, 10])


def _safety_parquet(folder, n=12):
    from datasets import Dataset, Features, Image, Value
    from PIL import Image as PILImage

    rng = np.random.default_rng(1)
    features = Features(
        {"image": Image(), "caption": Value("string"), "unsafe": Value("bool"), "kind": Value("string")}
    )
    ds = Dataset.from_dict(
        {
            "image": [
                PILImage.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)) for _ in range(n)
            ],
            "caption": [f"a photo {i}" + (", with a knife" if i % 2 else "") for i in range(n)],
            "unsafe": [bool(i % 2) for i in range(n)],
            "kind": ["knife" if i % 4 == 1 else "gun" for i in range(n)],
        },
        features=features,
    )
    (folder / "data").mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    return folder


@pytest.fixture(scope="module")
def full_run(tiny_clip_dir, tiny_parquet_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("trust") / "run"
    report = trust_report(
        str(tiny_clip_dir),
        str(out),
        dataset=str(tiny_parquet_dir),
        label_column="occupation",
        attributes=["skin_tone", "gender"],
        cache_dir=str(out.parent / "cache"),
        **FAST,
    )
    return report, out


def test_schema_round_trips_and_is_versioned(full_run):
    report, out = full_run
    data = json.loads((out / "trust_report.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["format"] == "trustvl-trust-report"
    assert TrustReport.from_dict(data) == report
    assert TrustReport.from_dict(json.loads(json.dumps(report.to_dict()))).to_dict() == data
    with pytest.raises(TrustVLInputError, match="schema_version"):
        TrustReport.from_dict({**data, "schema_version": SCHEMA_VERSION + 1})


def test_every_axis_runs_on_a_labelled_attributed_dataset(full_run):
    report, out = full_run
    r = report.model
    assert r.skipped == {} and r.bias and r.safety and r.spurious
    # bias: the audit of before is inside, and written as metrics.json too
    assert json.loads((out / "metrics.json").read_text()) == r.bias.audit.to_dict()
    assert len(r.bias.directions) == 2 * 2  # 2 prompts x 2 attributes
    for d in r.bias.directions:  # the over-represented level's skew is the prompt's MaxSkew@k
        at = r.bias.audit.evaluation.fairness[d.attribute].at_k[d.k]
        q = r.bias.audit.evaluation.prompts.index(d.prompt)
        assert d.skew.value == pytest.approx(at.max_skew_per_query[q])
        assert d.skew.interval is not None and 0 <= d.stability <= 1
    assert r.bias.zero_shot_top1.value == pytest.approx(r.bias.audit.evaluation.zero_shot_top1)
    assert set(r.safety.per_category) == {"gun", "knife", "blood", "syringe"}
    assert 0 <= r.safety.nsfw_rate_text_to_image.value <= 1 and r.safety.chance == pytest.approx(7 / 15)
    c = r.safety.control  # the default probe's element-free control, one excess per unsafe query
    assert c is not None and c.excess_text_to_image.n == c.excess_image_to_text.n == 8
    assert c.excess_text_to_image.value == pytest.approx(
        r.safety.nsfw_rate_text_to_image.value - c.nsfw_rate_text_to_image.value
    )
    assert c.safe_query_shift_image_to_text.n == 8 and c.safe_query_shift_image_to_text.interval is not None
    assert r.spurious.n_images == 24 and r.spurious.n_regions == 24 * 4


def test_spurious_axis_by_default_discovers_on_the_whole_default_gallery(tiny_clip_dir, tmp_path):
    from conftest import write_attributed_parquet

    # the default gallery is 800 scenes: on 400 of them RaVL missed the planted watermark on one world seed
    # of three, on all 800 on none (docs/trust_report.md), so the default discovery takes the whole gallery
    assert TrustReportConfig.spurious_max_images >= TrustReportConfig.default_gallery_size == 800
    gallery = write_attributed_parquet(tmp_path / "gallery", n=420)  # more than the old default, 400
    fast = {k: v for k, v in FAST.items() if k != "spurious_max_images"}
    report = trust_report(
        str(tiny_clip_dir),
        str(tmp_path / "run"),
        dataset=str(gallery),
        axes=["spurious"],
        label_column="occupation",
        cache_dir=str(tmp_path / "c"),
        **fast,
    )
    sp = report.model.spurious
    assert sp.n_images == 420 and sp.n_regions == 420 * 4 and report.model.skipped == {}
    assert "RaVL discovery on the first 420 images" in (tmp_path / "run" / "report.html").read_text()


def test_axes_are_skipped_with_a_reason_and_the_others_run(tiny_clip_dir, tiny_parquet_dir, tmp_path):
    safety = _safety_parquet(tmp_path / "safety")
    report = trust_report(
        str(tiny_clip_dir),
        str(tmp_path / "a"),
        dataset=str(tiny_parquet_dir),
        attributes=["skin_tone"],
        safety_dataset=str(safety),
        safety_column="no_such_column",
        cache_dir=str(tmp_path / "c"),
        **FAST,
    )
    r = report.model
    assert r.bias is not None and r.safety is None and r.spurious is None
    assert "no_such_column" in r.skipped["safety"] and "label column" in r.skipped["spurious"]
    html = (tmp_path / "a" / "report.html").read_text()
    assert "skipped: " in html and "no_such_column" in html

    report = trust_report(
        str(tiny_clip_dir),
        str(tmp_path / "b"),
        dataset=str(tiny_parquet_dir),
        axes=["safety"],
        safety_dataset=str(safety),
        safety_category_column="kind",
        **FAST,
    )
    assert report.model.bias is None and report.model.spurious is None and report.model.skipped == {}
    assert set(report.model.safety.per_category) == {"knife", "gun"} and report.model.safety.n_unsafe == 6


def test_axes_bias_keeps_the_audit_of_before(tiny_clip_dir, tiny_parquet_dir, tmp_path):
    from trustvl.evaluation.audit import AuditResult

    result = trust_report(
        str(tiny_clip_dir),
        str(tmp_path / "run"),
        dataset=str(tiny_parquet_dir),
        axes=["bias"],
        cache_dir=str(tmp_path / "c"),
        **FAST,
    )
    assert isinstance(result, AuditResult)
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["metrics.json", "plots", "report.html", "report.md"]


def test_compare_with_itself_is_within_noise_everywhere(tiny_clip_dir, tiny_parquet_dir, tmp_path):
    report = trust_report(
        str(tiny_clip_dir),
        str(tmp_path / "run"),
        dataset=str(tiny_parquet_dir),
        label_column="occupation",
        compare=str(tiny_clip_dir),
        cache_dir=str(tmp_path / "c"),
        **FAST,
    )
    assert {v.axis for v in report.verdicts} == {"bias", "safety", "spurious"}
    assert all(v.verdict == "within noise" and v.change.difference == 0 for v in report.verdicts)
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Model vs baseline" in html and html.count("within noise") >= len(report.verdicts)
    n = sum(v.axis == "safety" for v in report.verdicts)
    assert f"<strong>Unsafe content</strong>: 0 better, 0 worse, {n} within noise of {n} metrics." in html


def _settings():
    return UncertaintySettings(n_resamples=200, seed=0)


def _safety(rate: np.ndarray, sep: float) -> SafetyAxis:
    from trustvl.evaluation.trust_report.estimates import weighted_mean

    s = _settings()
    e = weighted_mean(rate, s)
    sep_e = Estimate(sep, None, 10)
    return SafetyAxis(
        "probe",
        10,
        10,
        10,
        0.5,
        e,
        e,
        {"gun": {"text_to_image": e, "image_to_text": e}},
        {"image": sep_e, "text": sep_e},
    )


def test_compare_calls_a_clear_change_better_or_worse():
    rng = np.random.default_rng(0)
    unsafe_retrieving = (rng.random(400) < 0.8).astype(float)  # NSFW rate about 0.8 per query
    safe_retrieving = np.where(rng.random(400) < 0.5, 0.0, unsafe_retrieving)  # the same queries, half fixed
    fixed = ModelTrustReport("safe", safety=_safety(safe_retrieving, 0.6))
    base = ModelTrustReport("base", safety=_safety(unsafe_retrieving, 0.9))
    verdicts = {v.metric: v.verdict for v in compare_reports(fixed, base, _settings())}
    assert verdicts["NSFW rate@10 text→image"] == "better"
    assert verdicts["NSFW rate@10 text→image, gun"] == "better"
    assert {v for m, v in verdicts.items() if "separability" in m} == {"no interval"}
    worse = {v.metric: v.verdict for v in compare_reports(base, fixed, _settings())}
    assert worse["NSFW rate@10 image→text"] == "worse"


def test_probe_control_is_each_unsafe_scene_without_its_element():
    from trustvl.evaluation.trust_report.safety_probe import synthworld_probe

    probe = synthworld_probe(8, 0)
    assert probe.has_control and len(probe.control_texts) == len(probe.control_images) == 8
    for j in range(8):
        unsafe_text, control_text = probe.texts[8 + j], probe.control_texts[j]
        assert unsafe_text.startswith(control_text + ", ") and len(unsafe_text) > len(control_text) + 2
        same = (probe.images[8 + j] == probe.control_images[j]).all(-1).mean()
        assert 0.9 < same < 1.0  # the same scene; only the element's pixels differ


def _synthetic_probe(m: int):
    """``m`` safe rows and their ``m`` unsafe twins (same content, other row), with a control."""
    from trustvl.evaluation.trust_report.safety_probe import SafetyProbe

    unsafe = np.repeat([False, True], m)
    categories = ["safe"] * m + ["gun", "knife"] * (m // 2)
    return SafetyProbe(
        "synthetic", None, [""] * 2 * m, unsafe, categories, control_images=[None] * m, control_texts=[""] * m
    )


def _embeddings(m: int, noise: float, element: float, seed: int = 0):
    """Images and captions of ``_synthetic_probe(m)``: each twin pair shares a content vector, plus ``noise``;
    the unsafe rows carry ``element`` times a shared unsafe direction, their control does not."""
    rng = np.random.default_rng(seed)
    d = 32
    content = np.tile(rng.normal(size=(m, d)), (2, 1))
    unsafe_dir = np.zeros(d)
    unsafe_dir[0] = 1.0

    def emb(extra):
        x = content + noise * np.random.default_rng(extra).normal(size=content.shape)
        clean = torch.nn.functional.normalize(torch.as_tensor(x), dim=1)
        x[m:] += element * unsafe_dir * np.linalg.norm(x[m:], axis=1, keepdims=True)
        return torch.nn.functional.normalize(torch.as_tensor(x), dim=1), clean[m:]

    (img, img_c), (txt, txt_c) = emb(seed + 1), emb(seed + 2)
    return img, txt, (img_c, txt_c)


def test_nsfw_rate_of_a_sharper_content_matcher_is_a_diagnostic_the_excess_is_the_verdict():
    """Two models blind to the unsafe element: the one matching content more sharply ranks each unsafe
    caption's safe twin first, so its NSFW rate falls far below the other's. That is no safety change: the
    rate reads "lower" (no better direction), the excess over the element-free control "within noise". A model
    whose unsafe rows carry the element is worse on the excess."""
    from trustvl.evaluation.trust_report.safety_axis import safety_axis_of_embeddings

    m, s = 120, _settings()
    probe = _synthetic_probe(m)

    def report(name, noise, element):
        img, txt, control = _embeddings(m, noise, element)
        axis = safety_axis_of_embeddings(probe, img, txt, control=control, nsfw_k=1, uncertainty=s)
        return ModelTrustReport(name, safety=axis)

    blurry, sharp, sensitive = (
        report("blurry", 3.0, 0.0),
        report("sharp", 0.2, 0.0),
        report("unsafe", 3.0, 2.0),
    )
    assert (
        sharp.safety.nsfw_rate_text_to_image.value < 0.1 < 0.3 < blurry.safety.nsfw_rate_text_to_image.value
    )
    for r in (blurry, sharp):  # blind to the element: the excess is exactly 0 for every query
        c = r.safety.control
        assert c.excess_text_to_image.value == c.excess_image_to_text.value == 0.0
        assert c.safe_query_shift_text_to_image.value == c.safe_query_shift_image_to_text.value == 0.0
        assert c.nsfw_rate_text_to_image.value == r.safety.nsfw_rate_text_to_image.value
    verdicts = {v.metric: v for v in compare_reports(sharp, blurry, s)}
    rate = verdicts["NSFW rate@1 text→image"]
    assert rate.lower_is_better is None and rate.verdict == "lower"  # was "better" before the control
    assert verdicts["NSFW rate@1 text→image, gun"].verdict == "lower"
    excess = [v for name, v in verdicts.items() if "excess" in name]
    assert len(excess) == 2 + 2 * 2 and all(v.lower_is_better is True for v in excess)
    assert {v.verdict for v in excess} == {"within noise"}
    assert not {v.verdict for v in verdicts.values()} & {"better", "worse"}
    assert sensitive.safety.control.excess_text_to_image.value > 0.3
    worse = {v.metric: v.verdict for v in compare_reports(sensitive, blurry, s)}
    assert worse["NSFW excess@1 text→image (rate − element-free control)"] == "worse"
    assert worse["NSFW excess@1 image→text (rate − element-free control)"] == "worse"


def test_every_verdict_states_its_better_direction(full_run):
    from trustvl.evaluation.trust_report.render import BETTER_WHEN, verdict_table

    report, _ = full_run
    both = TrustReport(report.model, report.uncertainty, report.model)
    both.verdicts = compare_reports(report.model, report.model, _settings())
    directions = {v.metric: v.lower_is_better for v in both.verdicts}
    k = report.model.bias.k
    assert directions[f"skin tone MaxSkew@{k}"] is True and directions[f"skin tone MinSkew@{k}"] is False
    assert directions["skin tone NDKL"] is True and directions["zero-shot top-1"] is False
    assert directions["NSFW rate@3 text→image"] is None  # the default probe has its control
    assert directions["NSFW excess@3 text→image (rate − element-free control)"] is True
    assert directions["unsafe vs safe separability, image (AUROC)"] is None
    assert all(d in BETTER_WHEN for d in directions.values())
    table = verdict_table(both)
    assert table.headers[2] == "better when" and {row[2] for row in table.rows} == set(BETTER_WHEN.values())


def test_weighted_auroc_is_the_auroc_of_the_resampled_sample():
    from trustvl.metrics import gallery_resample_counts

    rng = np.random.default_rng(0)
    scores = torch.as_tensor(np.round(rng.normal(size=30), 1))  # ties included
    positive = torch.as_tensor(rng.random(30) < 0.4)
    counts = gallery_resample_counts(30, 5, 3).double()
    for row, got in zip(counts, weighted_auroc(scores, positive, counts)):
        idx = torch.repeat_interleave(torch.arange(30), row.long())
        s, p = scores[idx], positive[idx]
        pos, neg = s[p], s[~p]
        want = ((pos[:, None] > neg[None]).double() + 0.5 * (pos[:, None] == neg[None]).double()).mean()
        assert float(got) == pytest.approx(float(want))
    e = auroc(scores, positive, _settings())
    assert e.interval.contains(e.value) and len(e.replicates) == 200


def test_worst_group_is_the_lowest_group_accuracy():
    correct = np.array([1, 1, 0, 1, 0, 0, 1, 1], dtype=float)
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    e = worst_group(correct, groups, _settings())
    assert e.value == pytest.approx(1 / 3) and e.interval.low <= e.value <= e.interval.high


def test_bad_inputs_one_line_nothing_written(tiny_clip_dir, tiny_parquet_dir, tmp_path, capsys):
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    from trustvl.modeling.synthworld_clip import default_clip_path
    from trustvl.testing.tiny import build_tiny_clip

    vision_only = tmp_path / "vision-only"
    CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
    ).save_pretrained(vision_only)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32).save_pretrained(
        vision_only
    )  # an image tower alone
    other_tokenizer = build_tiny_clip(tmp_path / "other-tok", tokenizer=default_clip_path())
    base = ["audit", "--dataset", str(tiny_parquet_dir), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    cases = [
        (["--model", str(vision_only), "--out", str(tmp_path / "o1")], "get_text_features"),
        (
            ["--model", str(tiny_clip_dir), "--compare", str(other_tokenizer), "--out", str(tmp_path / "o2")],
            "different tokenizers",
        ),
        (
            [
                "--model",
                str(tiny_clip_dir),
                "--baseline",
                str(other_tokenizer),
                "--out",
                str(tmp_path / "o3"),
            ],
            "different tokenizers",
        ),
        (
            ["--model", str(tiny_clip_dir), "--axes", "bias", "nonsense", "--out", str(tmp_path / "o4")],
            "nonsense",
        ),
        (  # a streamed gallery never holds its images: only the bias axis can run on it
            [
                "--model",
                str(tiny_clip_dir),
                "--streaming",
                "--axes",
                "bias",
                "safety",
                "--out",
                str(tmp_path / "o5"),
            ],
            "with streaming=True",
        ),
        (
            [
                "--model",
                str(tiny_clip_dir),
                "--axes",
                "spurious",
                "--label-column",
                "nope",
                "--out",
                str(tmp_path / "o5"),
            ],
            "nope",
        ),
    ]
    capsys.readouterr()  # the fixtures' own progress lines
    for argv, needle in cases:
        assert main([*base, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("trustvl: error: ") and err.count("\n") == 1 and needle in err, err
        assert not (tmp_path / argv[-1]).exists()


def test_page_shows_every_number_with_its_interval(full_run):
    report, out = full_run
    html = (out / "report.html").read_text()
    r = report.model
    estimates = [
        r.safety.nsfw_rate_text_to_image,
        r.safety.nsfw_rate_image_to_text,
        *r.safety.separability.values(),
        r.bias.zero_shot_top1,
        *r.bias.worst_group_accuracy.values(),
        r.spurious.image_accuracy,
    ]
    estimates += [d.skew for d in r.bias.directions]
    estimates += [rate for by in r.safety.per_category.values() for rate in by.values()]
    estimates += [c.score for c in r.spurious.clusters] + [
        g.gap for c in r.spurious.clusters for g in c.classes_hurt
    ]
    estimates += [c.pull for c in r.spurious.clusters if c.pull is not None]
    for e in estimates:
        assert e.interval is not None
        assert value_text(e.value, e.interval).split(" (")[0] in html
    # no bare decimal in a table cell but the sampling floors (a reference, not a measurement): every
    # measured number cell carries its interval
    floors = set()
    for a in r.bias.audit.evaluation.fairness.values():
        floors |= {f"{a.ndkl_floor:.3f}", f"{a.ndkl_floor:.4f}"}
        for s in a.at_k.values():
            floors |= {f"{s.max_skew_floor:.3f}", f"{s.min_skew_floor:.3f}"}
    cells = re.findall(r"<td>([^<]*)</td>", html)
    bare = [c for c in cells if re.fullmatch(r"-?\d+\.\d+", c) and c not in floors]
    assert not bare, bare[:5]


def test_publish_reads_the_trust_report_into_the_model_index(full_run):
    from trustvl.evaluation.model_index import model_index_from_metrics
    from trustvl.hub.publish.model_cards import results_section
    from trustvl.hub.publish.model_index import run_metrics

    report, out = full_run
    metrics = model_index_from_metrics(json.loads((out / "trust_report.json").read_text()))
    names = {m.name: m.value for m in metrics}
    assert names["text_to_image NSFW rate@3"] == pytest.approx(
        report.model.safety.nsfw_rate_text_to_image.value
    )
    assert names["skin_tone NDKL"] == pytest.approx(
        report.model.bias.audit.evaluation.fairness["skin_tone"].ndkl
    )
    found, source = run_metrics(None, [out], None, lambda data, alpha: model_index_from_metrics(data, alpha))
    assert source.name == "trust_report.json" and len(found) == len(metrics)
    assert "trust_report.json" in results_section(found, source) and "NSFW rate" in results_section(
        found, source
    )


def test_cli_prints_every_axis(tiny_clip_dir, tiny_parquet_dir, tmp_path, capsys):
    argv = [
        "audit",
        "--model",
        str(tiny_clip_dir),
        "--dataset",
        str(tiny_parquet_dir),
        "--out",
        str(tmp_path / "run"),
        "--label-column",
        "occupation",
        "--k",
        "5",
        "--safety-probe-size",
        "8",
        "--nsfw-k",
        "3",
        "--spurious-max-images",
        "24",
        "--n-resamples",
        "20",
        "--cache-dir",
        str(tmp_path / "c"),
        "--quiet",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "skin tone: MaxSkew@5 " in out and "zero-shot top-1:" in out
    assert "safety: NSFW rate@3 text→image " in out and "(chance 0.467)" in out
    assert "spurious: " in out and out.rstrip().endswith(str(tmp_path / "run" / "report.html"))
    assert (tmp_path / "run" / "trust_report.json").is_file()
