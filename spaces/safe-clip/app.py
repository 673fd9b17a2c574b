"""trustvl Space: Safe-CLIP (arXiv 2311.16254) - an unsafe query, retrieved and drawn with and without Safe-CLIP.

On start: a small SynthWorld gallery of quadruplets (each scene once with an unsafe element - a weapon, blood,
a syringe - and once without) is rendered into a temporary folder with trustvl's quadruplet fixture; the base
model is the embedded SynthWorld CLIP, Safe-CLIP is that CLIP plus the shipped LoRA adapter (``adapter/``, made
with ``trustvl train safe-clip``; see README.md). A query retrieves the top images with each model (the share
of unsafe images among them is shown, next to the same share averaged over all the gallery's unsafe captions
with a 95 % query-bootstrap interval); the page opens on the example query retrieved. The SynthWorld
text-to-image model draws the query with its own text encoder and with Safe-CLIP's text tower
(``make_safe_pipeline``), same seeds.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import gradio as gr
import torch
from datasets import load_dataset

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.wording import value_text
from trustvl.metrics import unsafe_share_at_k
from trustvl.metrics.bootstrap import gallery_resample_counts
from trustvl.metrics.intervals import centred_interval
from trustvl.modeling.embedding import embed_images, embed_texts, load_clip
from trustvl.modeling.lora import load_adapter, merge_lora
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.modeling.synthworld_sd import load_default_sd
from trustvl.pipelines import make_safe_pipeline
from trustvl.testing.safe_clip import tiny_quadruplet_dataset
from trustvl.utils.image_files import image_file

HERE = Path(__file__).resolve().parent
N_SCENES = 64  # gallery: 64 scenes x (with, without the unsafe element)
MAX_PROMPT_CHARS = 120
MAX_TOP_IMAGES = 16
#: generation bounds: 2 pipelines x images x steps stays under ~30 s on 2 CPU cores
MAX_GEN_IMAGES, MAX_GEN_STEPS = 4, 20
N_RESAMPLES = 1000  # query bootstrap of the gallery-wide share
#: the query the page opens on: the gallery's unsafe caption of scene 21, one for which the base CLIP's top 8
#: are all unsafe images (README.md gives both models' shares for it and over all the gallery's captions)
EXAMPLE_SCENE = 21


@lru_cache(maxsize=1)
def gallery():
    """(images, is_unsafe, kind) of the gallery, and its scenes' unsafe captions."""
    folder = Path(tempfile.mkdtemp(prefix="safe_clip_space_")) / "quadruplets"
    tiny_quadruplet_dataset(folder, {"train": 1, "validation": 1, "test": N_SCENES}, seed=0)
    test = load_dataset(str(folder), split="test")
    images = list(test["safe_image"]) + list(test["unsafe_image"])
    unsafe = [False] * len(test) + [True] * len(test)
    kinds = ["safe"] * len(test) + list(test["unsafe_kind"])
    return images, unsafe, kinds, list(test["unsafe_text"])


def example_query() -> str:
    return gallery()[3][EXAMPLE_SCENE]


@lru_cache(maxsize=MAX_TOP_IMAGES)
def gallery_wide_share(n_top: int) -> dict[str, str]:
    """Per model, the unsafe share of the top ``n_top`` averaged over every unsafe caption of the gallery
    (one query each), with a 95 % query-bootstrap interval: what a single query's share varies around."""
    found, processor = models()
    _, unsafe, _, captions = gallery()
    counts = gallery_resample_counts(len(captions), N_RESAMPLES).double()
    out = {}
    for name, image_embeds in gallery_embeddings().items():
        queries = embed_texts(found[name], processor, captions)
        per_query = unsafe_share_at_k(queries @ image_embeds.T, torch.tensor(unsafe), n_top)
        mean = float(per_query.mean())
        interval = centred_interval(mean, counts @ per_query / len(captions), lower=0.0, upper=1.0)
        out[name] = value_text(mean, interval, digits=2)
    return out


@lru_cache(maxsize=1)
def models():
    base, processor = load_clip(default_clip_path(), device="cpu")
    safe = merge_lora(load_adapter(default_clip_path(), HERE / "adapter")).eval()
    return {"base CLIP": base, "Safe-CLIP": safe}, processor


@lru_cache(maxsize=1)
def gallery_embeddings():
    found, processor = models()
    images = gallery()[0]
    return {name: embed_images(m, processor, images, progress=False) for name, m in found.items()}


@lru_cache(maxsize=1)
def pipelines():
    plain = load_default_sd(device="cpu")
    return plain, make_safe_pipeline(plain, models()[0]["Safe-CLIP"])


def _check_prompt(prompt: str) -> str:
    if not prompt or not prompt.strip():
        raise TrustVLInputError("the query is empty; expected e.g. 'a photo of a chef, holding a knife'")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise TrustVLInputError(
            f"the query has {len(prompt)} characters; expected at most {MAX_PROMPT_CHARS}"
        )
    return prompt.strip()


def retrieve(prompt: str, n_top: float):
    n_top = int(n_top)
    try:
        prompt = _check_prompt(prompt)
        if not 1 <= n_top <= MAX_TOP_IMAGES:
            raise TrustVLInputError(f"{n_top} top images requested; expected 1 to {MAX_TOP_IMAGES}")
        found, processor = models()
        images, unsafe, kinds, _ = gallery()
        outputs, rows = [], []
        for name, image_embeds in gallery_embeddings().items():
            query = embed_texts(found[name], processor, [prompt])
            order = torch.argsort(-(query @ image_embeds.T)[0], stable=True)[:n_top].tolist()
            outputs.append([(image_file(images[i]), kinds[i]) for i in order])
            rows.append(
                [name, f"{sum(unsafe[i] for i in order) / n_top:.0%}", gallery_wide_share(n_top)[name]]
            )
    except TrustVLInputError as err:
        raise gr.Error(str(err)) from None
    headers = [
        "model",
        f"unsafe images in the top {n_top}",
        f"mean over the gallery's {N_SCENES} unsafe captions [95% CI]",
    ]
    table = {"headers": headers, "data": rows}
    return outputs[0], outputs[1], table


def generate(prompt: str, n_images: float, steps: float, seed: float, progress=gr.Progress()):
    n_images, steps, seed = int(n_images), int(steps), int(seed)
    try:
        prompt = _check_prompt(prompt)
        if not 1 <= n_images <= MAX_GEN_IMAGES:
            raise TrustVLInputError(
                f"{n_images} images requested; expected 1 to {MAX_GEN_IMAGES} (~30 s on 2 CPU cores)"
            )
        if not 1 <= steps <= MAX_GEN_STEPS:
            raise TrustVLInputError(f"steps={steps}; expected 1 to {MAX_GEN_STEPS}")
        grids = []
        for i, pipe in enumerate(pipelines()):
            progress(i / 2, desc="generating")
            grids.append(
                pipe(
                    prompt,
                    num_inference_steps=steps,
                    num_images_per_prompt=n_images,
                    generator=torch.Generator().manual_seed(seed),
                ).images
            )
    except TrustVLInputError as err:
        raise gr.Error(str(err)) from None
    return [image_file(im) for im in grids[0]], [image_file(im) for im in grids[1]]


with gr.Blocks(title="trustvl: Safe-CLIP") as demo:
    gr.Markdown(
        "# Safe-CLIP (trustvl)\n"
        "Safe-CLIP fine-tunes CLIP so that unsafe inputs embed like their safe counterparts. An unsafe query"
        " retrieves from a SynthWorld gallery in which every scene appears with and without an unsafe element,"
        " with the base CLIP and with Safe-CLIP; the SynthWorld text-to-image model draws it with its own and"
        " with Safe-CLIP's text encoder."
    )
    query_box = gr.Textbox(label="query", max_length=MAX_PROMPT_CHARS, elem_id="query")
    with gr.Tab("retrieval"):
        n_top_box = gr.Slider(1, MAX_TOP_IMAGES, value=8, step=1, label="top images", elem_id="n-top")
        retrieve_button = gr.Button("Retrieve", variant="primary", elem_id="retrieve")
        share_box = gr.Dataframe(label="unsafe share of the top images", elem_id="unsafe-share")
        with gr.Row():
            base_box = gr.Gallery(label="base CLIP", columns=4, height=260, elem_id="base-top")
            safe_box = gr.Gallery(label="Safe-CLIP", columns=4, height=260, elem_id="safe-top")
    with gr.Tab("generation"):
        with gr.Row():
            n_box = gr.Slider(1, MAX_GEN_IMAGES, value=2, step=1, label="images", elem_id="n-images")
            steps_box = gr.Slider(1, MAX_GEN_STEPS, value=12, step=1, label="steps", elem_id="steps")
            seed_box = gr.Number(0, precision=0, minimum=0, maximum=2**31 - 1, label="seed", elem_id="seed")
        generate_button = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Row():
            plain_box = gr.Gallery(label="own text encoder", columns=4, height=220, elem_id="plain-grid")
            safe_gen_box = gr.Gallery(
                label="Safe-CLIP text encoder", columns=4, height=220, elem_id="safe-grid"
            )
    retrieve_button.click(
        retrieve, [query_box, n_top_box], [base_box, safe_box, share_box], api_name="retrieve"
    )
    generate_button.click(
        generate, [query_box, n_box, steps_box, seed_box], [plain_box, safe_gen_box], api_name="generate"
    )
    # the page opens on the example query already retrieved (cheap: the gallery is embedded once at start)
    demo.load(example_query, None, query_box).then(
        retrieve, [query_box, n_top_box], [base_box, safe_box, share_box], api_name=False
    )

demo.queue(default_concurrency_limit=1, max_size=8)

if __name__ == "__main__":
    gallery_embeddings(), gallery_wide_share(8), pipelines()
    demo.launch()
