"""trustvl Space: RaVL discovery of the spurious image regions a fine-tuned CLIP relies on (SPEC §3).

On start: the spurious-digits set (digits 1, 3, 7; a red rectangle planted with "seven" in training at
Cramér's V = 0.95, independent of the class in the balanced test split) is built into a temporary folder, and
the fine-tuned model is the embedded SynthWorld CLIP plus the shipped LoRA adapter (``adapter/``, made by
``make_adapter.py``). On request, trustvl's ``discover`` splits each test image into 2 x 2 regions, clusters
the region embeddings (K-medoids, k by silhouette) and ranks the clusters by per-class accuracy gap and
influence. The rectangle is ground truth here, so the app also says how many of each cluster's regions
hold it, and which clusters RaVL mitigation (``trustvl train ravl``) would act on under each
``flag_clusters`` strategy (``trustvl.training.ravl.flag_strategies``). The page opens on the default
request (:data:`DEFAULT_REQUEST`) answered.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import gradio as gr
import numpy as np
from datasets import load_dataset
from transformers import CLIPProcessor

from trustvl.data_builders.ravl.spurious_digits import build_spurious_digits, rectangle_region_truth
from trustvl.discovery import discover, plot_cluster_exemplars
from trustvl.errors import TrustVLInputError
from trustvl.modeling.lora import load_adapter, merge_lora
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.training.ravl import (
    DEFAULT_FLAG_STRATEGY,
    FLAG_STRATEGIES,
    MEDOID_STRATEGIES,
    selection_from_result,
)
from trustvl.utils.image_files import image_file

HERE = Path(__file__).resolve().parent
CLASSES = [1, 3, 7]
SPURIOUS_CLASS = 7
CRAMERS_V = 0.95
N_TEST = 96
#: the discovery request: embedding 4 regions per image and the k sweep stay under ~30 s on 2 CPU cores
MIN_IMAGES, MAX_IMAGES = 24, N_TEST
MAX_CLUSTERS_SHOWN = 5
#: the request the page opens on, answered (test images, subset seed; discovery is cached per request)
DEFAULT_REQUEST = (48, 0)


@lru_cache(maxsize=1)
def digits():
    """The spurious-digits test split (balanced: the rectangle is independent of the class)."""
    folder = Path(tempfile.mkdtemp(prefix="ravl_space_")) / "digits"
    build_spurious_digits(
        folder,
        cramers_v=CRAMERS_V,
        spurious_class=SPURIOUS_CLASS,
        classes=CLASSES,
        n_train=256,
        n_test=N_TEST,
        seed=0,
        progress=False,
    )
    return load_dataset(str(folder), split="test")


@lru_cache(maxsize=1)
def finetuned_model():
    base = default_clip_path()
    model = merge_lora(load_adapter(base, HERE / "adapter")).eval()
    return model, CLIPProcessor.from_pretrained(base)


@lru_cache(maxsize=4)
def run_discovery(n_images: int, seed: int):
    test = digits()
    order = np.random.default_rng(seed).permutation(len(test))[:n_images]
    subset = test.select(sorted(order.tolist()))
    names = subset.features["label"].names
    model, processor = finetuned_model()
    result = discover(
        model,
        processor,
        list(subset["image"]),
        list(subset["label"]),
        [f"a photo of the digit {n}" for n in names],
        class_names=names,
        progress=False,
        seed=seed,
    )
    return subset, result


def acted_on_by(result) -> dict[int, str]:
    """Per kept cluster id: the flag strategies whose mitigation acts on it (a score weight below 1 in
    parentheses), e.g. ``"top1, top_per_class, all_kept, score_weighted, gap_test"``."""
    # the medoid strategies compare the clusters' medoid embeddings (discover() returns them)
    has_medoids = getattr(result, "medoid_embeds", None) is not None
    selections = [
        selection_from_result(result, strategy)
        for strategy in FLAG_STRATEGIES
        if has_medoids or strategy not in MEDOID_STRATEGIES
    ]
    out = {}
    for cluster in result.clusters:
        names = []
        for sel in selections:
            w = float(sel.weights[cluster.cluster_id])
            if w > 0:
                names.append(sel.strategy if w == 1.0 else f"{sel.strategy} ({w:.2f})")
        out[int(cluster.cluster_id)] = ", ".join(names) or "none"
    return out


def cluster_rows(result, truth, max_shown: int = MAX_CLUSTERS_SHOWN) -> tuple[list[str], list[list]]:
    """The ranked-cluster table: headers and one row per shown cluster."""
    names = result.class_names
    acted = acted_on_by(result) if result.clusters else {}
    rows = []
    for rank, cluster in enumerate(result.clusters[:max_shown], start=1):
        rows.append(
            [
                rank,
                int(cluster.cluster_id),
                round(float(cluster.score), 3),
                round(float(cluster.influence), 3),
                int(cluster.size),
                ", ".join(f"{n}: {g:+.2f}" for n, g in zip(names, cluster.gap)),
                acted[int(cluster.cluster_id)],
                f"{truth[cluster.region_indices].mean():.0%}",
            ]
        )
    headers = [
        "rank",
        "cluster",
        "score",
        "influence",
        "regions",
        "accuracy gap per class (in - out)",
        "mitigation acts on it under flag_clusters =",
        "regions with the rectangle",
    ]
    return headers, rows


def mitigation_line(result) -> str:
    """Which clusters ``trustvl train ravl`` acts on with the default strategy (ids, scores, classes)."""
    if not result.clusters:
        return "Mitigation has no cluster to act on."
    selection = selection_from_result(result, DEFAULT_FLAG_STRATEGY)
    acted = "; ".join(c.describe() for c in selection.clusters) or "none"
    return f"Mitigation (`trustvl train ravl`, default `flag_clusters={DEFAULT_FLAG_STRATEGY}`) acts on: {acted}."


def discover_clusters(n_images: float, seed: float, progress=gr.Progress()):
    n_images, seed = int(n_images), int(seed)
    if not MIN_IMAGES <= n_images <= MAX_IMAGES:
        raise gr.Error(
            f"{n_images} images requested; expected {MIN_IMAGES} to {MAX_IMAGES} (each request must stay under ~30 s)"
        )
    if not 0 <= seed <= 10_000:
        raise gr.Error(f"seed={seed}; expected 0 to 10000")
    progress(0.1, desc="embedding regions and clustering")
    try:
        subset, result = run_discovery(n_images, seed)
    except TrustVLInputError as err:
        raise gr.Error(str(err)) from None
    progress(0.9, desc="drawing exemplars")
    truth = rectangle_region_truth(subset, result.regions)
    exemplars = plot_cluster_exemplars(
        result, list(subset["image"]), n_clusters=MAX_CLUSTERS_SHOWN, n_per_cluster=8, thumb_size=48
    )
    headers, rows = cluster_rows(result, truth)
    table = {"headers": headers, "data": rows}
    summary = (
        f"{result.n_images} test images, {result.n_regions} regions, k = {result.k}; image zero-shot accuracy"
        f" {result.image_accuracy:.2f}. {result.message}\n\n{mitigation_line(result)}"
    )
    return image_file(exemplars), table, summary


with gr.Blocks(title="trustvl: RaVL discovery") as demo:
    gr.Markdown(
        "# RaVL: which image regions does a fine-tuned CLIP rely on? (trustvl)\n"
        "A CLIP fine-tuned on digits where a red rectangle co-occurs with *seven* (Cramér's V = 0.95). RaVL"
        " clusters the 2 × 2 regions of balanced test images and ranks the clusters by how much the model's"
        " per-class accuracy differs when a region of the cluster is present (gap) and by influence. The table"
        " also says which clusters RaVL mitigation would act on under each `flag_clusters` strategy."
    )
    with gr.Row():
        n_box = gr.Slider(
            MIN_IMAGES, MAX_IMAGES, value=DEFAULT_REQUEST[0], step=3, label="test images", elem_id="n-images"
        )
        seed_box = gr.Number(
            DEFAULT_REQUEST[1], precision=0, minimum=0, maximum=10_000, label="subset seed", elem_id="seed"
        )
    run = gr.Button("Discover spurious regions", variant="primary", elem_id="run-discovery")
    summary_box = gr.Markdown(elem_id="discovery-summary")
    table_box = gr.Dataframe(label="ranked clusters", elem_id="cluster-table")
    exemplar_box = gr.Image(label="exemplar regions per ranked cluster", type="filepath", elem_id="exemplars")
    run.click(
        discover_clusters, [n_box, seed_box], [exemplar_box, table_box, summary_box], api_name="discover"
    )
    # the page opens on the default request answered: the planted rectangle's cluster ranked first
    demo.load(
        lambda: discover_clusters(*DEFAULT_REQUEST),
        None,
        [exemplar_box, table_box, summary_box],
        api_name=False,
    )

demo.queue(default_concurrency_limit=1, max_size=8)

if __name__ == "__main__":
    digits(), finetuned_model(), run_discovery(*DEFAULT_REQUEST)
    demo.launch()
