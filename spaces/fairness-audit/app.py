"""trustvl Space: the trust report of a CLIP model. Retrieval fairness (MaxSkew@k, MinSkew@k, NDKL per
attribute, with intervals), unsafe content (NSFW rate text→image and image→text on SynthWorld's safety probe,
separability) and spurious features (RaVL discovery on SynthWorld-Web scenes, where a watermark sits in half
of the images), the same measures as ``trustvl audit``.

Runs offline on the embedded SynthWorld CLIP and a small SynthWorld gallery rendered on start (cached per
model and dataset). Every number comes from trustvl's evaluator (``evaluate_embeddings``): gallery-bootstrap
95 % intervals and the sampling floor come with each mean. Another CLIP-style model can be named by a local
folder (or a Hub id already in the local cache); it is refused when it would take too long on 2 CPU cores.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from trustvl.data_builders.synthworld import SynthWorldConfig, SynthWorldRenderer, occupation_prompt
from trustvl.errors import TrustVLInputError
from trustvl.evaluation.dataset_columns import AttributeColumn
from trustvl.evaluation.evaluator import evaluate_embeddings
from trustvl.evaluation.plots import plot_group_shares
from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.trust_report.safety_axis import safety_axis
from trustvl.evaluation.trust_report.safety_probe import synthworld_probe
from trustvl.evaluation.trust_report.spurious_axis import spurious_axis
from trustvl.evaluation.wording import attribute_name, value_text
from trustvl.modeling.clip_components import normalize_uint8
from trustvl.modeling.embedding import embed_pixel_values, embed_texts, load_clip
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.utils.image_files import image_file

DEFAULT_MODEL = "synthworld-clip (embedded)"
DATASETS = {
    "SynthWorld test (balanced)": "test",
    "SynthWorld train (biased: each occupation prefers one skin tone)": "train",
}
#: 8 occupations x 4 x 2 x 2 x 2 attribute levels: one exactly balanced block of the test split.
GALLERY_SIZE = 256
K_CHOICES = [10, 25, 50, 100]
MAX_PROMPT_CHARS = 120
MAX_TOP_IMAGES = 24
#: A model above this many parameters would take more than ~30 s to embed the gallery on 2 CPU cores.
MAX_PARAMETERS = 160_000_000
N_RESAMPLES = 200
#: the trust axes' sizes: safe probe rows (and as many unsafe), RaVL images (4 regions each)
PROBE_SIZE = 60
SPURIOUS_IMAGES = 160


@lru_cache(maxsize=2)
def gallery(split: str):
    """The first ``GALLERY_SIZE`` scenes of a SynthWorld split: images, occupation ids, attribute columns."""
    renderer = SynthWorldRenderer(SynthWorldConfig(), seed=0)
    batch = renderer.render_batch(split, 0, GALLERY_SIZE)
    cfg = renderer.config
    attributes = [
        AttributeColumn(
            name,
            np.asarray([list(levels).index(s.attributes[name]) for s in batch.specs], dtype=np.int64),
            list(levels),
        )
        for name, levels in cfg.attributes.items()
    ]
    occupation = np.asarray([cfg.occupations.index(s.occupation) for s in batch.specs], dtype=np.int64)
    return batch.images, occupation, attributes, list(cfg.occupations)


@lru_cache(maxsize=2)
def model(name: str):
    path = default_clip_path() if name == DEFAULT_MODEL else name
    clip, processor = load_clip(path, device="cpu")
    n_params = sum(p.numel() for p in clip.parameters())
    if n_params > MAX_PARAMETERS:
        raise TrustVLInputError(
            f"model {name!r} has {n_params / 1e6:.0f} M parameters; this Space embeds its gallery on 2 CPU"
            f" cores and accepts at most {MAX_PARAMETERS / 1e6:.0f} M (run `trustvl audit` for larger models)"
        )
    return clip, processor


@lru_cache(maxsize=4)
def gallery_embeddings(model_name: str, split: str) -> torch.Tensor:
    clip, processor = model(model_name)
    images = gallery(split)[0]
    return embed_pixel_values(clip, normalize_uint8(images, processor.image_processor), batch_size=64)


def _check(model_name: str, dataset: str, k: int, prompt: str, n_top: int) -> None:
    if dataset not in DATASETS:
        raise TrustVLInputError(f"dataset {dataset!r} is not offered; expected one of {list(DATASETS)}")
    if int(k) not in K_CHOICES:
        raise TrustVLInputError(f"k={k} is not offered; expected one of {K_CHOICES}")
    if not prompt or not prompt.strip():
        raise TrustVLInputError("the prompt is empty; expected a short text such as 'a photo of a nurse'")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise TrustVLInputError(
            f"the prompt has {len(prompt)} characters; expected at most {MAX_PROMPT_CHARS}"
        )
    if not 1 <= int(n_top) <= MAX_TOP_IMAGES:
        raise TrustVLInputError(f"{n_top} top images requested; expected 1 to {MAX_TOP_IMAGES}")


def run_audit(model_name: str, dataset: str, k: float, attribute: str, prompt: str, n_top: float):
    """The fairness table, the group-share plot of ``attribute`` and the top images for ``prompt``."""
    k, n_top = int(k), int(n_top)
    try:
        _check(model_name, dataset, k, prompt, n_top)
        split = DATASETS[dataset]
        images, occupation, attributes, occupations = gallery(split)
        image_embeds = gallery_embeddings(model_name, split)
        clip, processor = model(model_name)
        prompts = [occupation_prompt(o) for o in occupations]
        result = evaluate_embeddings(
            image_embeds,
            embed_texts(clip, processor, prompts),
            prompts=prompts,
            attributes=attributes,
            ks=[k],
            labels=occupation,
            class_names=occupations,
            uncertainty=UncertaintySettings(n_resamples=N_RESAMPLES),
        )
        query = embed_texts(clip, processor, [prompt.strip()])
    except TrustVLInputError as err:
        raise gr.Error(str(err)) from None
    rows = []
    for name, fairness in result.fairness.items():
        at_k = fairness.at_k[k]
        rows.append(
            [
                attribute_name(name),
                value_text(at_k.max_skew, at_k.max_skew_interval),
                value_text(at_k.min_skew, at_k.min_skew_interval),
                value_text(fairness.ndkl, fairness.ndkl_interval),
                f"{at_k.max_skew_floor:.3f}",
            ]
        )
    table = {
        "headers": [
            "attribute",
            f"MaxSkew@{k} [95% CI]",
            f"MinSkew@{k} [95% CI]",
            "NDKL [95% CI]",
            f"MaxSkew@{k} floor",
        ],
        "data": rows,
    }
    chosen = next(a for a in attributes if attribute_name(a.name) == attribute or a.name == attribute)
    fairness = result.fairness[chosen.name]
    plot_path = Path(tempfile.mkdtemp(prefix="audit_")) / "group_shares.png"
    plot_group_shares(
        plot_path,
        prompts,
        chosen.names,
        fairness.at_k[k].top_k_shares,
        fairness.target,
        f"{attribute_name(chosen.name)}: share of the top {k}, per prompt",
        floor_shares=fairness.at_k[k].floor_shares,
    )
    order = torch.argsort(-(query @ image_embeds.T)[0], stable=True)[:n_top].tolist()
    top = [
        (
            image_file(images[i]),
            ", ".join(a.names[a.values[i]] for a in attributes) + f" ({occupations[occupation[i]]})",
        )
        for i in order
    ]
    summary = (
        f"{len(images)} images, zero-shot top-1 {result.zero_shot_top1:.3f}; means over {len(prompts)}"
        f" occupation prompts, {N_RESAMPLES} bootstrap resamples. The floor is what rankings random within"
        " each occupation score on this gallery."
    )
    return table, str(plot_path), top, summary


@lru_cache(maxsize=1)
def web_gallery():
    """SynthWorld-Web test scenes (the watermark in half of them, independent of the occupation)."""
    world = SynthWorldConfig.web(unsafe=None)
    batch = SynthWorldRenderer(world, seed=0).render_batch("test", 0, SPURIOUS_IMAGES)
    labels = np.asarray([world.occupations.index(s.occupation) for s in batch.specs], dtype=np.int64)
    return list(batch.images), labels, list(world.occupations)


def run_trust(model_name: str):
    """The safety table, the spurious-cluster table, the top cluster's regions and a summary line."""
    try:
        if model_name != DEFAULT_MODEL and not model_name.strip():
            raise TrustVLInputError("the model is empty; expected a local CLIP folder")
        clip, processor = model(model_name)
        settings = UncertaintySettings(n_resamples=N_RESAMPLES)
        safety = safety_axis(clip, processor, synthworld_probe(PROBE_SIZE), uncertainty=settings)
        images, labels, occupations = web_gallery()
        embeds = embed_pixel_values(clip, normalize_uint8(np.stack(images), processor.image_processor))
        folder = Path(tempfile.mkdtemp(prefix="trust_"))
        spurious = spurious_axis(
            clip,
            processor,
            images,
            embeds,
            labels,
            occupations,
            [occupation_prompt(o) for o in occupations],
            dataset="SynthWorld-Web test",
            label_column="occupation",
            out_dir=folder,
            n_top=3,
            uncertainty=settings,
        )
    except TrustVLInputError as err:
        raise gr.Error(str(err)) from None
    rows = [
        [
            f"NSFW rate@{safety.nsfw_k} text→image",
            value_text(safety.nsfw_rate_text_to_image.value, safety.nsfw_rate_text_to_image.interval),
        ],
        [
            f"NSFW rate@{safety.nsfw_k} image→text",
            value_text(safety.nsfw_rate_image_to_text.value, safety.nsfw_rate_image_to_text.interval),
        ],
    ]
    control = safety.control
    if control is not None:  # what the unsafe element itself does: rate minus its element-free control
        rows += [
            [
                f"NSFW excess@{safety.nsfw_k} {label} (rate − element-free control)",
                value_text(e.value, e.interval),
            ]
            for label, e in (
                ("text→image", control.excess_text_to_image),
                ("image→text", control.excess_image_to_text),
            )
        ]
    rows += [
        [f"separability, {t} tower (AUROC)", value_text(e.value, e.interval)]
        for t, e in safety.separability.items()
    ]
    rows += [
        [f"NSFW rate text→image, {c}", value_text(v["text_to_image"].value, v["text_to_image"].interval)]
        for c, v in safety.per_category.items()
    ]
    safety_table = {"headers": ["metric", "value [95% CI]"], "data": rows}
    cluster_rows = [
        [
            c.rank,
            c.cluster_id,
            value_text(c.score.value, c.score.interval),
            c.size,
            ", ".join(g.class_name for g in c.classes_hurt) or "—",
        ]
        for c in spurious.clusters
    ]
    spurious_table = {
        "headers": ["rank", "cluster", "score Σ|gap| [95% CI]", "regions", "classes hurt"],
        "data": cluster_rows or [["—", "—", spurious.message, "—", "—"]],
    }
    strip = str(folder / spurious.clusters[0].thumbnails) if spurious.clusters else None
    sensitive = safety.nsfw_rate_text_to_image.interval.low > safety.chance
    summary = (
        f"Safety probe: {safety.n_safe} safe + {safety.n_unsafe} unsafe SynthWorld scenes; chance NSFW rate"
        f" {safety.chance:.3f}: the model is {'' if sensitive else 'not '}unsafe-sensitive beyond noise."
        f" RaVL on {spurious.n_images} SynthWorld-Web scenes ({spurious.n_regions} regions): {spurious.message}."
    )
    return safety_table, spurious_table, strip, summary


ATTRIBUTE_CHOICES = [attribute_name(a) for a in SynthWorldConfig().attributes]

with gr.Blocks(title="trustvl: trust report") as demo:
    gr.Markdown(
        "# Trust report of a CLIP model (trustvl)\n"
        "**Social bias**: MaxSkew@k, MinSkew@k and NDKL (Geyik et al. 2019) of occupation-prompt retrieval, per"
        " protected attribute, with gallery-bootstrap 95 % intervals. **Unsafe content** and **spurious"
        " features** below. Runs offline on the embedded SynthWorld CLIP and"
        f" a {GALLERY_SIZE}-scene SynthWorld gallery."
    )
    with gr.Row():
        model_box = gr.Dropdown(
            [DEFAULT_MODEL],
            value=DEFAULT_MODEL,
            allow_custom_value=True,
            label="model (or a local CLIP folder)",
        )
        dataset_box = gr.Dropdown(list(DATASETS), value=next(iter(DATASETS)), label="dataset")
        k_box = gr.Dropdown(K_CHOICES, value=25, label="k (top-k cut-off)")
        attribute_box = gr.Dropdown(ATTRIBUTE_CHOICES, value=ATTRIBUTE_CHOICES[0], label="plot attribute")
    with gr.Row():
        prompt_box = gr.Textbox(
            "a photo of a nurse",
            label="prompt for the top images",
            max_length=MAX_PROMPT_CHARS,
            elem_id="prompt",
        )
        n_top_box = gr.Slider(1, MAX_TOP_IMAGES, value=12, step=1, label="top images", elem_id="n-top")
    run = gr.Button("Run audit", variant="primary", elem_id="run-audit")
    summary_box = gr.Markdown(elem_id="audit-summary")
    table_box = gr.Dataframe(label="fairness per attribute", elem_id="fairness-table")
    with gr.Row():
        plot_box = gr.Image(label="group shares of the top k", type="filepath", elem_id="group-shares")
        top_box = gr.Gallery(label="top images for the prompt", columns=6, height=360, elem_id="top-images")
    run.click(
        run_audit,
        [model_box, dataset_box, k_box, attribute_box, prompt_box, n_top_box],
        [table_box, plot_box, top_box, summary_box],
        api_name="audit",
    )
    gr.Markdown(
        "## Unsafe content and spurious features\n"
        "NSFW rate (Safe-CLIP): the share of unsafe items in the top 10 retrieved for each unsafe query;"
        " NSFW excess: that rate minus the rate for the same scenes without the unsafe element (what the"
        " element itself does; lower is safer);"
        " separability: AUROC of unsafe vs safe in each tower. Spurious features: RaVL's ranked region"
        " clusters, their accuracy gap Σ|gap| and the classes they hurt."
    )
    run_trust_button = gr.Button("Run safety and spurious axes", elem_id="run-trust")
    trust_summary_box = gr.Markdown(elem_id="trust-summary")
    with gr.Row():
        safety_box = gr.Dataframe(label="unsafe content", elem_id="safety-table")
        spurious_box = gr.Dataframe(label="spurious region clusters (RaVL)", elem_id="spurious-table")
    strip_box = gr.Image(label="top cluster's regions", type="filepath", elem_id="spurious-strip")
    run_trust_button.click(
        run_trust, [model_box], [safety_box, spurious_box, strip_box, trust_summary_box], api_name="trust"
    )

demo.queue(default_concurrency_limit=1, max_size=8)

if __name__ == "__main__":
    gallery_embeddings(DEFAULT_MODEL, "test")  # render and embed the default gallery on start
    demo.launch()
