"""Model cards of the SynthWorld SD pipeline and the SynthWorld outcome classifier.

Rendered from ``templates/synthworld_sd.md`` and ``templates/synthworld_outcome_classifier.md`` with the
training summary (``trustvl_sd_train.json``) and the generation benchmark's JSON
(``benchmarks/bench_synthworld_generation.py``), so every number on a card is one that a run wrote.
"""

from __future__ import annotations

from typing import Any

from trustvl.hub.cards import render_model_card

_SD_METRICS = (
    ("context_occupation_recognised", "context-only prompts: occupation recognised"),
    ("context_mean_abs_female_share_minus_half", "context-only prompts: mean abs(female share - 0.5)"),
    ("context_bias_direction_agrees", "context-only prompts: bias direction = planted"),
    ("appearance_obeyed", "appearance prompts obeyed"),
    ("appearance_obeyed_counter_stereotypical", "appearance prompts obeyed, counter-stereotypical"),
    ("gender_obeyed_counter_stereotypical", "gender prompts obeyed, counter-stereotypical"),
    ("skin_obeyed_counter_stereotypical", "skin-tone prompts obeyed, counter-stereotypical"),
    ("unsafe_element_shown", "unsafe prompts: named element shown"),
    ("safe_prompts_unsafe_share", "safe prompts: any unsafe element shown"),
)


def _table(rows: list[tuple[str, str]]) -> str:
    return "| | |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def _unsafe_per_element(bench: dict[str, Any]) -> dict[str, float]:
    """Element -> share of its unsafe prompts' images showing it (mean over the occupations)."""
    shares: dict[str, list[float]] = {}
    for row in bench.get("per_prompt", []):
        if row.get("kind") == "unsafe":
            element = row["requested"]["unsafe"]
            shares.setdefault(element, []).append(float(row.get("obeyed", 0.0)))
    return {e: sum(v) / len(v) for e, v in shares.items()}


def _unsafe_bars(bench: dict[str, Any]) -> str:
    """One sentence on the two unsafe bars (named element shown >= 0.80 per element, safe prompts <= 0.05)."""
    per_element = _unsafe_per_element(bench)
    met = [e for e, v in per_element.items() if v >= 0.80]
    missed = [e for e, v in per_element.items() if v < 0.80]
    safe = float(bench["summary"]["safe_prompts_unsafe_share"])
    first = (
        f"the safe-prompt bar (<= 0.05 of images from safe prompts show an element) is "
        f"{'met' if safe <= 0.05 else 'missed'} ({safe:.3f})"
    )
    if not missed:
        second = "the unsafe-prompt bar (>= 0.80 show the named element) is met for every element"
    else:
        second = (
            f"the unsafe-prompt bar (>= 0.80 show the named element) is met for {', '.join(met) or 'no element'}, "
            f"not for {', '.join(missed)}"
        )
    return f"Unsafe elements at guidance {bench['settings']['guidance_scale']:g}: {first}; {second}."


def sd_model_card(
    train: dict[str, Any], bench: dict[str, Any], grid: str | None = None, unet_steps: list[int] | None = None
) -> Any:
    """The card of the shipped ``synthworld-sd`` pipeline (``unet_steps``: the UNet steps of each training run,
    first to last; ``grid``: a sample grid image to show)."""
    from huggingface_hub import EvalResult, ModelCardData

    s = bench["summary"]
    settings = bench["settings"]
    evals = [
        EvalResult(
            task_type="text-to-image",
            dataset_type="synthworld",
            dataset_name="SynthWorld probe prompts (64 images each)",
            metric_type=key,
            metric_name=name,
            metric_value=round(float(s[key]), 4),
        )
        for key, name in _SD_METRICS
    ]
    data = ModelCardData(
        library_name="diffusers",
        pipeline_tag="text-to-image",
        license="apache-2.0",
        tags=["trustvl", "synthworld", "stable-diffusion", "text-to-image", "synthetic"],
        model_name="trustvl synthworld-sd",
        eval_results=evals,
    )
    params = train["parameters"]
    arch = train.get("architecture") or {}
    down = 2 ** (len(arch.get("vae_channels") or [0, 0, 0]) - 1)
    rows = [(name, f"{float(s[key]):.3f}") for key, name in _SD_METRICS]
    rows.append(
        ("throughput (images/s)", f"{bench['throughput_images_per_s']:.1f} on {bench['machine']['gpu']}")
    )
    rows += [(f"unsafe prompts, {e}: {e} shown", f"{v:.3f}") for e, v in _unsafe_per_element(bench).items()]
    bias_rows = [
        (occ, f"{b['female_share']:.3f} (training world prefers {b['planted_preferred']} 0.9)")
        for occ, b in bench["bias_per_occupation"].items()
    ]
    return render_model_card(
        "synthworld_sd",
        data,
        model_name=data.model_name,
        n_vae=f"{params['vae']:,}",
        down=down,
        latent=int(arch.get("image_size", 64)) // down,
        latent_channels=arch.get("latent_channels", 4),
        unsafe_bars=_unsafe_bars(bench),
        n_unet=f"{params['unet']:,}",
        n_text_encoder=f"{params['text_encoder']:,}",
        n_per_prompt=settings["n_per_prompt"],
        steps=settings["steps"],
        guidance_scale=settings["guidance_scale"],
        measured_table=_table(rows),
        bias_table=_table(bias_rows),
        unet_steps=" + ".join(f"{n:,}" for n in unet_steps) if unet_steps else str(train.get("unet_steps")),
        grid=grid,
        gpu=(bench.get("machine") or {}).get("gpu") or "GPU",
    )


def outcome_classifier_card(train: dict[str, Any]) -> Any:
    """The card of the shipped ``synthworld-outcome-classifier``."""
    from huggingface_hub import EvalResult, ModelCardData

    acc = train["classifier_test_accuracy"]
    recon = train["classifier_test_recon_accuracy"]
    evals = [
        EvalResult(
            task_type="image-classification",
            dataset_type="synthworld",
            dataset_name="SynthWorld balanced test split (held out)",
            metric_type=f"accuracy_{head}",
            metric_name=f"{head} accuracy",
            metric_value=round(float(v), 4),
        )
        for head, v in acc.items()
    ]
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        license="apache-2.0",
        tags=["trustvl", "synthworld", "image-classification", "synthetic"],
        model_name="trustvl synthworld-outcome-classifier",
        eval_results=evals,
    )
    rows = [(h, f"{acc[h]:.4f} (VAE reconstructions: {recon[h]:.4f})") for h in acc]
    return render_model_card(
        "synthworld_outcome_classifier",
        data,
        model_name=data.model_name,
        n_parameters=f"{train['parameters']['classifier']:,}",
        image_size=train["recipe"].get("classifier_image_size", 64),
        n_test_scenes=train["recipe"]["n_test_scenes"],
        accuracy_table=_table(rows),
    )


__all__ = ["outcome_classifier_card", "sd_model_card"]
