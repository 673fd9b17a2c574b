"""trustvl Space: the CF_α knob. θ_α = θ0 + α·ΔW re-ranks a SynthWorld gallery live.

The model is trustvl's ``CFAlphaCLIPModel`` built from the embedded SynthWorld CLIP (θ0) and the shipped
peft LoRA adapter (ΔW, ``adapter/``, made with ``trustvl train cf-alpha``; see README.md). α lives in weight
space, so the gallery is embedded once per α of a small grid (0, 0.25, …, 1) with ``set_alpha`` and cached;
moving the slider re-ranks from the cached embeddings. At each α: the top images for a prompt and, per
attribute, MaxSkew@k and NDKL of the occupation prompts with gallery-bootstrap 95 % intervals (trustvl's
evaluator), next to the same at α = 0 (the original model). The page opens on α = 1 ranked, so the change
from the original shows without a click.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import gradio as gr
import torch

from trustvl.data_builders.synthworld import occupation_prompt
from trustvl.errors import TrustVLInputError
from trustvl.evaluation.dataset_columns import AttributeColumn
from trustvl.evaluation.evaluator import evaluate_embeddings
from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.synthworld import synthworld_test_set
from trustvl.evaluation.wording import attribute_name, value_text
from trustvl.modeling.cf_alpha import CFAlphaCLIPModel
from trustvl.modeling.clip_components import normalize_uint8
from trustvl.modeling.embedding import embed_pixel_values, embed_texts
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.utils.image_files import image_file

HERE = Path(__file__).resolve().parent
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
GALLERY_SIZE = 256  # one exactly balanced block of SynthWorld's test split
K = 25
MAX_PROMPT_CHARS = 120
MAX_TOP_IMAGES = 24
N_RESAMPLES = 200
#: the request the page opens on, answered (α, prompt, top images)
DEFAULT_REQUEST = (1.0, "a photo of a pilot", 12)


@lru_cache(maxsize=1)
def cf_model():
    from transformers import CLIPProcessor

    base = default_clip_path()
    model = CFAlphaCLIPModel.from_peft(base, HERE / "adapter", alpha=0.0).eval()
    return model, CLIPProcessor.from_pretrained(base)


@lru_cache(maxsize=len(ALPHAS))
def embeddings_at(alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gallery and occupation-prompt embeddings of θ0 + α·ΔW (cached per α of the grid)."""
    model, processor = cf_model()
    test = synthworld_test_set(GALLERY_SIZE)
    with model.temporary_alpha(alpha):
        images = embed_pixel_values(
            model, normalize_uint8(test.images, processor.image_processor), batch_size=64
        )
        prompts = embed_texts(model, processor, [occupation_prompt(o) for o in test.occupations])
    return images, prompts


@lru_cache(maxsize=len(ALPHAS))
def fairness_at(alpha: float):
    test = synthworld_test_set(GALLERY_SIZE)
    images, prompt_embeds = embeddings_at(alpha)
    return evaluate_embeddings(
        images,
        prompt_embeds,
        prompts=[occupation_prompt(o) for o in test.occupations],
        attributes=[
            AttributeColumn(a, test.attributes[a], list(v)) for a, v in test.attribute_levels.items()
        ],
        ks=[K],
        labels=test.occupation,
        class_names=list(test.occupations),
        uncertainty=UncertaintySettings(n_resamples=N_RESAMPLES),
    )


def rerank(alpha: float, prompt: str, n_top: float):
    """Top images for ``prompt`` and each attribute's skew, at α (snapped to the grid)."""
    n_top = int(n_top)
    try:
        alpha = float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise TrustVLInputError(f"alpha={alpha}; expected a value in [0, 1]")
        if not prompt or not prompt.strip():
            raise TrustVLInputError("the prompt is empty; expected a short text such as 'a photo of a nurse'")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise TrustVLInputError(
                f"the prompt has {len(prompt)} characters; expected at most {MAX_PROMPT_CHARS}"
            )
        if not 1 <= n_top <= MAX_TOP_IMAGES:
            raise TrustVLInputError(f"{n_top} top images requested; expected 1 to {MAX_TOP_IMAGES}")
        alpha = min(ALPHAS, key=lambda a: abs(a - alpha))
        images, _ = embeddings_at(alpha)
        result = fairness_at(alpha)
        model, processor = cf_model()
        with model.temporary_alpha(alpha):
            query = embed_texts(model, processor, [prompt.strip()])
    except TrustVLInputError as err:
        raise gr.Error(str(err)) from None
    test = synthworld_test_set(GALLERY_SIZE)
    order = torch.argsort(-(query @ images.T)[0], stable=True)[:n_top].tolist()
    top = [
        (
            image_file(test.images[i]),
            ", ".join(levels[test.attributes[a][i]] for a, levels in test.attribute_levels.items())
            + f" ({test.occupations[test.occupation[i]]})",
        )
        for i in order
    ]
    original = fairness_at(0.0).fairness
    rows = [
        [
            attribute_name(name),
            value_text(f.at_k[K].max_skew, f.at_k[K].max_skew_interval),
            value_text(original[name].at_k[K].max_skew, original[name].at_k[K].max_skew_interval),
            value_text(f.ndkl, f.ndkl_interval),
            value_text(original[name].ndkl, original[name].ndkl_interval),
            f"{f.at_k[K].max_skew_floor:.3f}",
        ]
        for name, f in result.fairness.items()
    ]
    headers = [
        "attribute",
        f"MaxSkew@{K} at α [95% CI]",
        f"MaxSkew@{K} at α = 0",
        "NDKL at α [95% CI]",
        "NDKL at α = 0",
        f"MaxSkew@{K} floor",
    ]
    table = {"headers": headers, "data": rows}
    summary = f"α = {alpha:g}: zero-shot top-1 {result.zero_shot_top1:.3f} on {GALLERY_SIZE} balanced scenes."
    return top, table, summary


with gr.Blocks(title="trustvl: CF_α") as demo:
    gr.Markdown(
        "# CF_α: a knob between the original and the counterfactually fine-tuned CLIP (trustvl)\n"
        "θ_α = θ0 + α·ΔW (arXiv 2406.11331). α = 0 is the original SynthWorld CLIP, α = 1 the CLIP fine-tuned"
        " so that occupations are read from context, not appearance. Move α: the gallery is re-ranked and"
        f" each attribute's MaxSkew@{K} and NDKL over the 8 occupation prompts are shown at that α, next to"
        " α = 0."
    )
    with gr.Row():
        alpha_box = gr.Slider(0, 1, value=DEFAULT_REQUEST[0], step=0.25, label="α", elem_id="alpha")
        prompt_box = gr.Textbox(
            DEFAULT_REQUEST[1], label="prompt", max_length=MAX_PROMPT_CHARS, elem_id="prompt"
        )
        n_top_box = gr.Slider(
            1, MAX_TOP_IMAGES, value=DEFAULT_REQUEST[2], step=1, label="top images", elem_id="n-top"
        )
    run = gr.Button("Rank", variant="primary", elem_id="rank")
    summary_box = gr.Markdown(elem_id="alpha-summary")
    with gr.Row():
        top_box = gr.Gallery(label="top images", columns=6, height=300, elem_id="top-images")
        table_box = gr.Dataframe(label="skew per attribute at α", elem_id="skew-table")
    inputs, outputs = [alpha_box, prompt_box, n_top_box], [top_box, table_box, summary_box]
    run.click(rerank, inputs, outputs, api_name="rerank")
    alpha_box.release(rerank, inputs, outputs, api_name=False)
    demo.load(lambda: rerank(*DEFAULT_REQUEST), None, outputs, api_name=False)

demo.queue(default_concurrency_limit=1, max_size=8)

if __name__ == "__main__":
    fairness_at(0.0), fairness_at(DEFAULT_REQUEST[0])  # the gallery at α = 0 and the default α; others on use
    demo.launch()
