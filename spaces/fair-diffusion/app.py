"""trustvl Space: Fair Diffusion (arXiv 2302.10893) on the embedded SynthWorld text-to-image model.

A prompt and target proportions of one attribute (gender or skin tone) give a ``FairnessInstruction``; the
same seeds are generated twice with trustvl's ``FairDiffusionPipeline``, without and with the instruction
(edit scale 7 and warm-up 2, the knobs measured best for SynthWorld SD at 20 steps), and the embedded
SynthWorld outcome classifier reads each image's group, so the measured shares sit next to the targets.
"Guide in context" (on by default) names each group in the prompt's occupation ("a photo of a very
dark-skinned nurse") instead of the paper's bare phrase ("person with very dark skin"); on the SynthWorld SD
it is what reaches a 4-level skin-tone target (trustvl's docs/results.md, "Fair Diffusion").

The page opens on the default request already answered (:data:`DEFAULT_REQUEST`: 16 images per grid, so that
a 50/50 target is 8 + 8 images; computed once per process and cached), so the effect shows without a click.
"""

from __future__ import annotations

import time
from functools import lru_cache

import gradio as gr
import numpy as np
import torch

from trustvl.data_builders.synthworld import OCCUPATIONS
from trustvl.errors import TrustVLInputError
from trustvl.modeling.outcome_classifier import load_default_outcome_classifier
from trustvl.modeling.synthworld_sd import load_default_sd
from trustvl.pipelines import FairDiffusionPipeline, FairnessInstruction
from trustvl.pipelines.fairness_instruction import subject_in_prompt
from trustvl.utils.image_files import image_file

FAIR_SCALE = 7.0
FAIR_WARMUP = 2
MAX_PROMPT_CHARS = 100
MAX_IMAGES = 16
MAX_STEPS = 30
#: a request whose estimated time (measured speed x images x steps) exceeds this is refused
MAX_REQUEST_S = 30.0
#: the guided grid evaluates the UNet on 2 more inputs per image (toward + away concept) than the plain one
FAIR_COST = 2.0
LEVELS = {
    "gender": ("feminine", "masculine"),
    "skin_tone": ("very light", "light", "dark", "very dark"),
}
#: the inputs the page opens on (prompt, attribute, target shares, images per grid, steps, seed, in context):
#: 16 images, so the 50/50 target is 8 + 8 images; an occupation the model draws with one gender (15 of 16
#: read feminine without the instruction); 10 steps read the same shares as 20 at half the CPU time
DEFAULT_REQUEST = ("a photo of a nurse", "gender", "0.5, 0.5", 16, 10, 0, True)


@lru_cache(maxsize=1)
def pipeline() -> FairDiffusionPipeline:
    pipe = FairDiffusionPipeline.from_pipe(load_default_sd(device="cpu"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@lru_cache(maxsize=1)
def seconds_per_image_step() -> float:
    """This machine's speed now: one plain image, 3 denoising steps (measured once, on first use)."""
    pipe = pipeline()
    pipe("a photo of a nurse", num_inference_steps=1, generator=torch.Generator().manual_seed(0))  # warm-up
    start = time.perf_counter()
    pipe("a photo of a nurse", num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    return (time.perf_counter() - start) / 3


def estimated_seconds(n_images: int, steps: int) -> float:
    return seconds_per_image_step() * n_images * steps * (1 + FAIR_COST)


@lru_cache(maxsize=1)
def classifier():
    return load_default_outcome_classifier(device="cpu")


def parse_shares(attribute: str, text: str) -> list[float]:
    """Target shares in the order of ``LEVELS[attribute]``, from comma-separated numbers (normalised)."""
    levels = LEVELS[attribute]
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise TrustVLInputError(
            f"target shares {text!r} are not numbers; expected {len(levels)} comma-separated numbers"
            f" for {', '.join(levels)}"
        ) from None
    if len(values) != len(levels) or any(v < 0 for v in values) or sum(values) <= 0:
        raise TrustVLInputError(
            f"target shares {text!r}; expected {len(levels)} non-negative numbers for {', '.join(levels)}"
            " (not all zero)"
        )
    return [v / sum(values) for v in values]


def measured_shares(images, attribute: str) -> list[float]:
    head = "gender_presentation" if attribute == "gender" else "skin_tone"
    readings = [r.get(head) for r in classifier().read(images)]
    return [sum(r == level for r in readings) / len(readings) for level in LEVELS[attribute]]


def generate(
    prompt: str,
    attribute: str,
    shares_text: str,
    n_images: float,
    steps: float,
    seed: float,
    in_context: bool = True,
    progress=gr.Progress(),
):
    n_images, steps, seed = int(n_images), int(steps), int(seed)
    try:
        if attribute not in LEVELS:
            raise TrustVLInputError(f"attribute {attribute!r}; expected one of {list(LEVELS)}")
        if not prompt or not prompt.strip():
            raise TrustVLInputError("the prompt is empty; expected e.g. 'a photo of a nurse'")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise TrustVLInputError(
                f"the prompt has {len(prompt)} characters; expected at most {MAX_PROMPT_CHARS}"
            )
        if not 2 <= n_images <= MAX_IMAGES:
            raise TrustVLInputError(f"{n_images} images requested; expected 2 to {MAX_IMAGES}")
        if not FAIR_WARMUP < steps <= MAX_STEPS:
            raise TrustVLInputError(f"steps={steps}; expected {FAIR_WARMUP + 1} to {MAX_STEPS}")
        if not 0 <= seed <= 2**31 - 1:
            raise TrustVLInputError(f"seed={seed}; expected 0 to {2**31 - 1}")
        if in_context and subject_in_prompt(prompt) is None:
            raise TrustVLInputError(
                f"guidance in context needs an occupation in the prompt ({', '.join(OCCUPATIONS)}); name one or "
                "untick 'guide in context'"
            )
        targets = parse_shares(attribute, shares_text)
        if (prompt.strip(), attribute, targets, n_images, steps, seed, bool(in_context)) == _default_key():
            return default_view()  # the page's own request: answered once, at start or on first load
        estimate = estimated_seconds(n_images, steps)
        if estimate > MAX_REQUEST_S:
            raise TrustVLInputError(
                f"{n_images} images x {steps} steps x 2 grids would take about {estimate:.0f} s on this machine;"
                f" this Space answers requests of at most {MAX_REQUEST_S:.0f} s: use fewer images or steps"
            )
        # the instruction's own checks (e.g. too few images for a group with a nonzero target) raise here too
        return _run(prompt.strip(), attribute, targets, n_images, steps, seed, bool(in_context), progress)
    except TrustVLInputError as err:
        raise gr.Error(str(err)) from None


def _default_key() -> tuple:
    prompt, attribute, shares, n_images, steps, seed, in_context = DEFAULT_REQUEST
    return (prompt, attribute, parse_shares(attribute, shares), n_images, steps, seed, in_context)


@lru_cache(maxsize=1)
def default_view():
    """The default request's answer (cached: the page opens on it; not subject to the per-request limit)."""
    return _run(*_default_key(), progress=lambda *args, **kwargs: None)


def _run(
    prompt: str,
    attribute: str,
    targets: list[float],
    n_images: int,
    steps: int,
    seed: int,
    in_context: bool,
    progress,
):
    """Both grids of one (validated) request and the measured shares."""
    instruction = FairnessInstruction.synthworld(
        attribute,
        targets,
        guidance_scale=FAIR_SCALE,
        warmup_steps=FAIR_WARMUP,
        contextual=in_context,
    )
    pipe = pipeline()
    outputs = {}
    for i, (name, fairness) in enumerate((("plain", None), ("fair", instruction))):
        progress(i / 2, desc=f"generating {n_images} images ({name})")
        outputs[name] = pipe(
            prompt,
            num_inference_steps=steps,
            num_images_per_prompt=n_images,
            generator=torch.Generator().manual_seed(seed),
            fairness=fairness,
            fairness_seed=seed,
        ).images
    progress(0.95, desc="reading the outcome")
    plain, fair = measured_shares(outputs["plain"], attribute), measured_shares(outputs["fair"], attribute)
    table = {
        "headers": ["group", "target", "without instruction", "with instruction"],
        "data": [
            [level, f"{t:.0%}", f"{p:.0%}", f"{f:.0%}"]
            for level, t, p, f in zip(LEVELS[attribute], targets, plain, fair)
        ],
    }
    gap = lambda shares: float(np.abs(np.asarray(shares) - np.asarray(targets)).sum() / 2)  # noqa: E731
    summary = (
        f"{n_images} images per grid, {steps} steps, seed {seed}, edit scale {FAIR_SCALE:g}, warm-up {FAIR_WARMUP},"
        f" guided {'in context' if in_context else 'with bare phrases'}."
        f" Total variation from the target: {gap(plain):.2f} without, {gap(fair):.2f} with the instruction"
        " (read by the SynthWorld outcome classifier)."
    )
    files = {name: [image_file(im) for im in images] for name, images in outputs.items()}
    return files["plain"], files["fair"], table, summary


with gr.Blocks(title="trustvl: Fair Diffusion") as demo:
    gr.Markdown(
        "# Fair Diffusion (trustvl)\n"
        "Generate with the embedded SynthWorld text-to-image model, whose training world ties each occupation"
        " to an appearance. A fairness instruction guides each image toward its assigned group (exact counts"
        " per target) with semantic guidance; the outcome classifier measures the shares."
    )
    with gr.Row():
        prompt_box = gr.Textbox(
            DEFAULT_REQUEST[0], label="prompt", max_length=MAX_PROMPT_CHARS, elem_id="prompt"
        )
        attribute_box = gr.Radio(
            list(LEVELS), value=DEFAULT_REQUEST[1], label="attribute", elem_id="attribute"
        )
        shares_box = gr.Textbox(
            DEFAULT_REQUEST[2],
            label="target shares (gender: feminine, masculine; skin tone: very light, light, dark,"
            " very dark)",
            elem_id="shares",
        )
    with gr.Row():
        n_box = gr.Slider(
            2, MAX_IMAGES, value=DEFAULT_REQUEST[3], step=1, label="images per grid", elem_id="n-images"
        )
        steps_box = gr.Slider(
            FAIR_WARMUP + 1, MAX_STEPS, value=DEFAULT_REQUEST[4], step=1, label="steps", elem_id="steps"
        )
        seed_box = gr.Number(DEFAULT_REQUEST[5], precision=0, label="seed", elem_id="seed")
        context_box = gr.Checkbox(
            DEFAULT_REQUEST[6],
            label="guide in context ('a photo of a female nurse', not 'female person')",
            elem_id="in-context",
        )
    run = gr.Button("Generate", variant="primary", elem_id="generate")
    summary_box = gr.Markdown(elem_id="fd-summary")
    with gr.Row():
        plain_box = gr.Gallery(label="without the instruction", columns=4, height=260, elem_id="plain-grid")
        fair_box = gr.Gallery(label="with the instruction", columns=4, height=260, elem_id="fair-grid")
    table_box = gr.Dataframe(label="measured shares", elem_id="shares-table")
    run.click(
        generate,
        [prompt_box, attribute_box, shares_box, n_box, steps_box, seed_box, context_box],
        [plain_box, fair_box, table_box, summary_box],
        api_name="generate",
    )
    demo.load(default_view, None, [plain_box, fair_box, table_box, summary_box], api_name=False)

demo.queue(default_concurrency_limit=1, max_size=8)

if __name__ == "__main__":
    pipeline(), classifier(), seconds_per_image_step(), default_view()
    demo.launch()
