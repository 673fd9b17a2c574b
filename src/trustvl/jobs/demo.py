"""``trustvl demo``: CF_α end to end on the embedded SynthWorld defaults, offline, on a CPU.

Steps (each timed, all outputs in one run folder, written atomically):

1. **audit** the default SynthWorld CLIP on SynthWorld's balanced test split (``data/synthworld``);
2. **build** counterfactual sets from biased train-split scenes with the oracle segmenter and inpainter
   (``data/counterfactuals``): same context pixels, people of other appearances;
3. **fine-tune** CF_α (LoRA, ``L = β1·L_CLIP + β0·L_cf + β_s·L_score``) through the shared training core (``cf_alpha/``:
   the CF_α model with its model card, and the LoRA delta as a peft adapter in ``cf_alpha/adapter/``);
4. **sweep α** over 0, 0.25, 0.5, 0.75, 1 (``sweep/``: table + Pareto plot);
5. **export** a plain merged ``CLIPModel`` at α = 1 (``merged/``);
6. **report**: ``report.html`` / ``report.md`` with the tables, plots and example counterfactual sets, and
   ``metrics.json`` (:class:`DemoResult`).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from trustvl.evaluation.audit import AuditResult
from trustvl.evaluation.plots import plt
from trustvl.evaluation.report import Figure, Links, Report, Table
from trustvl.evaluation.results import AlphaSweepResult, AttributeEffect, EvaluationResult, ZeroShotChange
from trustvl.evaluation.tables import effect_table, sweep_table
from trustvl.evaluation.wording import UNCERTAINTY_NOTE, attribute_name
from trustvl.hub.loading import load_dataset_any
from trustvl.training.cf_alpha import CFAlphaConfig, vision_lora_targets
from trustvl.utils.io import atomic_output_dir, write_json
from trustvl.utils.options import overwrite_option, progress_option

#: The demo's LoRA targets: attention and MLP projections of the vision tower's layers 2–5 (of 6).
DEMO_LORA_TARGETS = vision_lora_targets("[2-5]")


def demo_cf_alpha_recipe() -> CFAlphaConfig:
    """The demo's CF_α recipe (see :class:`DemoConfig`). Its ``dataset`` and ``output_dir`` name the run
    folder's ``data/counterfactuals`` and ``cf_alpha``: :func:`run_demo` places them in the run folder and
    sets ``base_model``, ``seed`` and ``disable_tqdm`` from the demo's own fields."""
    return CFAlphaConfig(
        dataset="data/counterfactuals",
        output_dir="cf_alpha",
        per_device_train_batch_size=16,
        max_steps=180,
        learning_rate=4e-3,
        lora_target_modules=DEMO_LORA_TARGETS,
        save_strategy="no",
    )


@dataclass
class DemoConfig:
    """Knobs of the demo (defaults finish in a few minutes on a 2-core CPU).

    The defaults are the CPU-sized recipe picked with ``benchmarks/search_cf_alpha_recipe.py``
    (``benchmarks/results/cf_alpha_recipe_demo7.json``, runs ``H4``/``H5``): 96 bases per occupation, sets
    of 4 balanced variants (each skin tone once), 180 steps × 16 sets at lr 4e-3, LoRA r = 8 on the vision
    tower's top four layers (:data:`DEMO_LORA_TARGETS`; the frozen patch embedding and first two layers are
    computed once per image, so a step runs four of six layers) and the CF_α loss with score cohesion
    (β0 = 30, β_s = 20): :func:`demo_cf_alpha_recipe`. On the three benchmark galleries it lowered every
    attribute's MaxSkew@100 at α = 1 (skin tone −49 / −51 %) for −0.43 / −1.35 points of zero-shot accuracy.
    The benchmark recipe (``benchmarks/bench_cf_alpha_synthworld.py``: all six layers, 800 steps × 32 sets
    of 8) is meant for a GPU.
    """

    out_dir: str = field(
        default="runs/demo",
        metadata={"help": "run folder (must be empty unless --overwrite)", "aliases": ["--out"]},
    )
    base_model: str | None = field(
        default=None, metadata={"help": "CLIP id or folder to debias; None: the embedded SynthWorld CLIP"}
    )
    n_test: int = field(
        default=1500, metadata={"help": "balanced test scenes audited and swept (the gallery)", "min": 1}
    )
    n_base_per_occupation: int = field(
        default=96, metadata={"help": "counterfactual sets per occupation", "min": 1}
    )
    variants_per_base: int = field(
        default=4, metadata={"help": "variants (appearances) per counterfactual set", "min": 2}
    )
    cf_alpha: CFAlphaConfig = field(
        default_factory=demo_cf_alpha_recipe,
        metadata={
            "help": "the CF_α training recipe (a --config file sets any CFAlphaConfig field: cf_alpha: {...})",
            "flags": {"max_steps": {"help": "CF_α optimiser steps", "min": 1}},
        },
    )
    alphas: list[float] = field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0], metadata={"help": "the α sweep"}
    )
    ks: list[int] = field(
        default_factory=lambda: [10, 100],
        metadata={
            "help": "cut-offs k of MaxSkew@k / MinSkew@k, each at most --n-test",
            "aliases": ["--k"],
            "min": 1,
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of every stage", "min": 0, "max": None})
    overwrite: bool = overwrite_option("run folder")
    progress: bool = progress_option()

    def summary(self) -> dict[str, Any]:
        """The configuration for ``metrics.json``: the demo's fields, and of the CF_α recipe the settings
        that differ from :class:`CFAlphaConfig`'s defaults (a ``TrainingArguments`` has about 150)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "cf_alpha"}
        recipe = self.cf_alpha.to_dict()
        defaults = CFAlphaConfig(dataset=self.cf_alpha.dataset, output_dir=self.cf_alpha.output_dir).to_dict()
        out["cf_alpha"] = {k: v for k, v in recipe.items() if defaults.get(k) != v}
        return out


def _say(msg: str) -> None:
    print(f"[trustvl demo] {msg}", flush=True)


@dataclass
class DemoResult:
    """The demo's summary (``metrics.json``).

    Attributes:
        base_model: the CLIP that was debiased.
        config: the :class:`DemoConfig` as a dict.
        zero_shot_top1: base (α = min of the sweep) vs CF_α (α = max) zero-shot top-1.
        effect: per attribute, MaxSkew@k (k = max of ``ks``) and NDKL of the base vs CF_α, with drops (%).
        counterfactuals: the counterfactual build's scalar summary.
        training: global_step, final_loss, train_seconds, n_sets, lora_parameters of the CF_α run.
        audit_base: the base model's audit (the full evaluation).
        seconds: wall-clock seconds per stage and in total.
        alpha_monotone: no step to a larger α makes an attribute's MaxSkew@k or NDKL worse beyond noise
            (:meth:`~trustvl.evaluation.results.AlphaSweepResult.monotone`; ``None`` without replicates).
        alpha_rises: the steps that did (:meth:`~trustvl.evaluation.results.AlphaSweepResult.rises`).
    """

    base_model: str
    config: dict[str, Any]
    zero_shot_top1: ZeroShotChange
    effect: dict[str, AttributeEffect]
    counterfactuals: Any
    training: dict[str, Any]
    audit_base: EvaluationResult
    seconds: dict[str, float] = field(default_factory=dict)
    alpha_monotone: bool | None = None
    alpha_rises: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["zero_shot_top1"] = asdict(self.zero_shot_top1)
        out["effect"] = {a: asdict(e) for a, e in self.effect.items()}
        out["audit_base"] = self.audit_base.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DemoResult:
        data = dict(data)
        data["zero_shot_top1"] = ZeroShotChange(**data["zero_shot_top1"])
        data["effect"] = {a: AttributeEffect.from_dict(e) for a, e in data["effect"].items()}
        data["audit_base"] = EvaluationResult.from_dict(data["audit_base"])
        return cls(**data)


def run_demo(cfg: DemoConfig) -> DemoResult:
    """Run the demo; returns the summary written to ``metrics.json``."""
    from trustvl.data_builders.cf_alpha.synthworld_stages import (
        build_synthworld_counterfactuals,
        synthworld_counterfactual_config,
    )
    from trustvl.data_builders.synthworld import (
        ATTRIBUTE_NAMES,
        SynthWorldConfig,
        SynthWorldRenderer,
        build_synthworld_dataset,
    )
    from trustvl.evaluation.audit import AuditConfig, run_audit
    from trustvl.evaluation.cf_alpha import AlphaSweepConfig, sweep_alpha
    from trustvl.modeling.cf_alpha import CFAlphaCLIPModel
    from trustvl.modeling.synthworld_clip import default_clip_path
    from trustvl.training.cf_alpha import train_cf_alpha

    base = str(cfg.base_model or default_clip_path())
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    with atomic_output_dir(cfg.out_dir, overwrite=cfg.overwrite) as stage:
        t = time.perf_counter()
        _say(f"1/6 rendering {cfg.n_test} balanced SynthWorld test scenes and auditing {base}")
        data_dir = build_synthworld_dataset(
            stage / "data" / "synthworld",
            SynthWorldConfig(),
            n_train=0,
            n_test=cfg.n_test,
            seed=cfg.seed,
            progress=cfg.progress,
        )
        audit = run_audit(
            AuditConfig(
                model=base,
                dataset=str(data_dir),
                out_dir=str(stage / "audit"),
                label_column="occupation",
                attributes=list(ATTRIBUTE_NAMES),
                ks=cfg.ks,
                progress=cfg.progress,
                use_cache=False,
            )
        )
        timings["audit"] = time.perf_counter() - t

        t = time.perf_counter()
        renderer = SynthWorldRenderer(SynthWorldConfig(), seed=cfg.seed)
        cf_cfg = synthworld_counterfactual_config(
            renderer,
            variants_per_base=cfg.variants_per_base,
            n_base_per_prompt=cfg.n_base_per_occupation,
            seed=cfg.seed,
        )
        n_bases = cfg.n_base_per_occupation * len(renderer.config.occupations)
        _say(
            f"2/6 building {n_bases} counterfactual sets x {cfg.variants_per_base} variants (oracle inpainting)"
        )
        summary = build_synthworld_counterfactuals(
            stage / "data" / "counterfactuals",
            cf_cfg,
            renderer=renderer,
            progress=cfg.progress,
            # natural scenes (the background is sometimes another occupation's) with their own varied
            # context captions: captions naming the setting of always-matching backgrounds would teach the
            # model to read the occupation off the background and cost accuracy
            force_setting=False,
            scene_captions=True,
        )
        timings["counterfactuals"] = time.perf_counter() - t

        t = time.perf_counter()
        tcfg = replace(
            cfg.cf_alpha,
            base_model=base,
            dataset=str(stage / "data" / "counterfactuals"),
            output_dir=str(stage / "cf_alpha"),
            seed=cfg.seed,
            disable_tqdm=not cfg.progress,
        )
        _say(f"3/6 fine-tuning CF_α (LoRA r={tcfg.lora_r}, {tcfg.max_steps} steps)")
        train = train_cf_alpha(tcfg)
        # a resume checkpoint holds pickled optimizer/RNG state; the published run folder keeps safetensors
        # only (the model, the adapter)
        for checkpoint in (stage / "cf_alpha").glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
        timings["train"] = time.perf_counter() - t

        t = time.perf_counter()
        _say(f"4/6 sweeping α over {cfg.alphas}")
        sweep = sweep_alpha(
            AlphaSweepConfig(
                model=train["model_dir"],
                dataset=str(data_dir),
                out_dir=str(stage / "sweep"),
                alphas=list(cfg.alphas),
                ks=cfg.ks,
                attributes=list(ATTRIBUTE_NAMES),
                progress=cfg.progress,
            ),
            # α = 0 is the audited base model on the same gallery: its embeddings are reused
            precomputed={0.0: audit.image_embeds} if audit.image_embeds is not None else None,
        )
        timings["sweep"] = time.perf_counter() - t

        t = time.perf_counter()
        _say("5/6 exporting a merged CLIPModel at α = 1 and writing the model card")
        model = CFAlphaCLIPModel.from_pretrained(train["model_dir"])
        from transformers import AutoProcessor

        model.export_merged(
            1.0, stage / "merged", processor=AutoProcessor.from_pretrained(train["model_dir"])
        )
        result = _summary(cfg, audit, sweep, train, summary, base)
        final = Path(cfg.out_dir).expanduser().resolve()  # cards name the final folder, never the staging one
        _write_card(
            stage / "cf_alpha" / "model", final / "cf_alpha" / "model", cfg, tcfg, result, sweep, train
        )
        _write_card(stage / "merged", final / "merged", cfg, tcfg, result, sweep, train, merged=True)
        timings["export"] = time.perf_counter() - t

        _say("6/6 writing the report")
        _example_sets(stage / "counterfactual_examples.png", stage / "data" / "counterfactuals")
        result.seconds = {k: round(v, 1) for k, v in timings.items()}
        result.seconds["total"] = round(time.perf_counter() - t_all, 1)
        write_json(stage / "metrics.json", result.to_dict())
        _write_report(stage, result, sweep)
    out = Path(cfg.out_dir).expanduser().resolve()
    _say(f"done in {result.seconds['total']:.0f} s; report: {out / 'report.html'}")
    return result


def _summary(
    cfg: DemoConfig, audit: AuditResult, sweep: AlphaSweepResult, train: dict, cf_summary: Any, base: str
) -> DemoResult:
    k_main = max(cfg.ks)
    first, last = sweep.at_alpha(min(cfg.alphas)), sweep.at_alpha(max(cfg.alphas))
    return DemoResult(
        base_model=base,
        config=cfg.summary(),
        zero_shot_top1=ZeroShotChange.between(first, last),
        effect={
            attr: AttributeEffect.between(first.fairness[attr], last.fairness[attr], k_main)
            for attr in first.fairness
        },
        counterfactuals={k: v for k, v in asdict(cf_summary).items() if not isinstance(v, (list, dict))}
        if hasattr(cf_summary, "__dataclass_fields__")
        else str(cf_summary),
        training={
            k: train[k] for k in ("global_step", "final_loss", "train_seconds", "n_sets", "lora_parameters")
        },
        audit_base=audit.evaluation,
        alpha_monotone=sweep.monotone,
        alpha_rises=[asdict(r) for r in sweep.rises()],
    )


def _lora_target_words(targets: Any) -> str:
    """The LoRA layers of a run in words, for its card."""
    from trustvl.training.cf_alpha import VISION_LORA_TARGETS

    layers = "q_proj, k_proj, v_proj, out_proj, fc1, fc2 of "
    if targets == VISION_LORA_TARGETS:
        return layers + "every vision-tower layer"
    if targets == DEMO_LORA_TARGETS:
        return layers + "vision-tower layers 2-5 of 0-5"
    if targets is None:
        return layers + "the vision and text towers"
    return f"modules matching {targets!r}"


def _write_card(
    model_dir: Path,
    final_dir: Path,
    cfg: DemoConfig,
    tcfg: Any,
    result: DemoResult,
    sweep: AlphaSweepResult,
    train: dict,
    merged: bool = False,
) -> None:
    """The model card of ``model_dir`` (the CF_α model, or with ``merged`` the plain ``CLIPModel`` exported at
    α = 1), naming ``final_dir`` (where the run folder ends up) in its usage snippet."""
    from trustvl.evaluation.report import markdown_table
    from trustvl.hub.cards import SYNTHWORLD_DATASET_ID, Metric, display_name, hub_reference, model_card

    k = max(cfg.ks)
    last = sweep.at_alpha(max(cfg.alphas))
    metrics = [
        Metric("zero-shot top-1", "accuracy", last.zero_shot_top1, "SynthWorld test", "trustvl/synthworld")
    ]
    for attr, f in last.fairness.items():
        metrics.append(
            Metric(
                f"{attribute_name(attr)} MaxSkew@{k}",
                f"max_skew@{k}",
                f.at_k[k].max_skew,
                "SynthWorld test",
                "trustvl/synthworld",
            )
        )
        metrics.append(
            Metric(f"{attribute_name(attr)} NDKL", "ndkl", f.ndkl, "SynthWorld test", "trustvl/synthworld")
        )
    effect = effect_table(result.effect)
    table = sweep_table(sweep)
    eval_table = (
        "Effect of CF_α (α = 1 vs the base model; means over the prompts with 95% bootstrap intervals, the"
        " signed paired change and its verdict, and the sampling floor):\n\n"
        + markdown_table(effect.headers, effect.rows)
        + f"\n\nMaxSkew@{sweep.k_shown} across α (95% intervals; last row: sampling floor):\n\n"
        + markdown_table(table.headers, table.rows)
    )
    card = model_card(
        "cf_alpha_merged" if merged else "cf_alpha",
        model_name="cf-alpha-synthworld-clip" + ("-merged" if merged else ""),
        metrics=metrics,
        base_model=hub_reference(result.base_model),
        datasets=[SYNTHWORLD_DATASET_ID],
        tags=["fairness", "cf-alpha", "counterfactual"],
        repo_path=str(final_dir),
        alpha=1.0,
        base_model_id=display_name(result.base_model),
        data_description=f"{result.training['n_sets']} SynthWorld counterfactual sets (oracle inpainting)",
        beta_clip=tcfg.beta_clip,
        beta_cf=tcfg.beta_cf,
        beta_score=f"{tcfg.beta_score:g}",
        cf_loss="mean squared distance of each set's normalised image embeddings to the set mean",
        lora_r=tcfg.lora_r,
        lora_alpha=f"{tcfg.lora_alpha:g}",
        lora_targets=_lora_target_words(tcfg.lora_target_modules),
        steps=train["global_step"],
        eval_table=eval_table,
        limitations="Trained and evaluated on SynthWorld only (synthetic scenes with a planted bias); the numbers"
        " say that the method removes a known bias, not how a real CLIP behaves. Fairness metrics at k=100 have a"
        " sampling floor (a ranking random within each occupation does not score 0; see the floor column);"
        " a change is called better or worse only when its paired bootstrap interval excludes 0."
        " α is a weight-space knob, not a fairness knob: at intermediate α (0.25-0.5) the skews of every"
        " attribute, the targeted one included, were measured above the base model's on SynthWorld before"
        " falling at α = 1; check every attribute in the α sweep before deploying an α < 1.",
    )
    card.save(str(model_dir / "README.md"))


def _example_sets(path: Path, cf_dir: Path, n_sets: int = 4, n_variants: int = 6) -> None:
    ds = load_dataset_any(
        cf_dir, split="train"
    )  # not plain load_dataset: it may return a same-named folder's rows
    base_col = list(ds["base_id"])
    bases = sorted(set(base_col))[:n_sets]
    n_sets = len(bases)
    n_variants = min(n_variants, max(base_col.count(b) for b in bases))  # no empty columns
    fig, axes = plt.subplots(n_sets, n_variants, figsize=(1.6 * n_variants, 1.8 * n_sets), squeeze=False)
    for r, b in enumerate(bases):
        rows = [i for i, x in enumerate(base_col) if x == b][:n_variants]
        for c in range(n_variants):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(rows):
                row = ds[rows[c]]
                ax.imshow(row["image"])
                names = ds.features
                tone = names["skin_tone"].int2str(row["skin_tone"]) if "skin_tone" in names else ""
                gender = (
                    names["gender_presentation"].int2str(row["gender_presentation"])
                    if "gender_presentation" in names
                    else ""
                )
                ax.set_title(f"{tone}\n{gender}", fontsize=7)
        axes[r][0].text(
            -0.1,
            0.5,
            ds[rows[0]]["caption"],
            transform=axes[r][0].transAxes,
            fontsize=7,
            ha="right",
            va="center",
            wrap=True,
        )
    fig.suptitle("Counterfactual sets: same context pixels, different people", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _write_report(stage: Path, result: DemoResult, sweep: AlphaSweepResult) -> None:
    from trustvl.evaluation.cf_alpha import sweep_report_sections

    zs = result.zero_shot_top1
    links = Links(
        [
            "audit/report.html",
            "sweep/report.html",
            "cf_alpha/model/README.md",
            "cf_alpha/adapter/",
            "merged/",
            "data/synthworld/",
            "data/counterfactuals/",
            "metrics.json",
        ]
    )
    report = Report(
        "trustvl demo: CF_α",
        intro=[
            f"CF_α on the embedded SynthWorld CLIP `{result.base_model}`. Lower MaxSkew and NDKL"
            " are fairer; α = 0 is the original model. Every mean carries a 95% gallery-bootstrap interval and"
            " its sampling floor (what rankings random within each occupation score on this gallery); a change"
            " is **better** or **worse** only when its paired interval excludes 0, else **within noise**.",
            UNCERTAINTY_NOTE,
        ],
    )
    report.add(
        "Effect of CF_α (α = 1 vs the base model)",
        f"Zero-shot occupation top-1: {zs.base:.4f} → {zs.cf_alpha:.4f} ({zs.change_points:+.2f} points).",
        effect_table(result.effect),
    )
    sweep_report_sections(report, sweep, folder="sweep/")
    report.add(
        "Base model audit", Figure("audit/plots/shares_skin_tone.png", "skin tone shares of the base model")
    )
    report.add("Example counterfactual sets", Figure("counterfactual_examples.png", "counterfactual sets"))
    report.add("Artefacts", links)
    report.add("Timings (s)", Table(["stage", "seconds"], [[k, v] for k, v in result.seconds.items()]))
    report.write(stage)
