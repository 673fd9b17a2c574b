"""RaVL mitigation (SPEC §3): the loss by hand, region flags by nearest medoid, training through the core with
a tiny CLIP (only LoRA changes), the discovery pipeline's files, and bad inputs."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from trustvl.errors import TrustVLInputError
from trustvl.training.ravl import (
    RaVLCollator,
    RaVLConfig,
    RaVLLoss,
    RegionImageDataset,
    SpuriousMedoids,
    class_prompts,
    compute_region_flags,
    spurious_region_flags,
    train_ravl,
)

EYE = torch.eye(4)
T3 = EYE[:3]  # three orthonormal class-prompt embeddings; EYE[3] is orthogonal to all of them


# ------------------------------------------------------------------------------------------ loss by hand
def test_uninformative_term_zero_for_uniform_and_exact_otherwise():
    loss = RaVLLoss()
    scale = torch.tensor(100.0)
    # a region orthogonal to every prompt, and one equally similar to all: uniform class distribution
    regions = torch.stack([EYE[3], T3.sum(0)]).view(1, 2, 4)
    flags = torch.tensor([[True, True]])
    assert loss.uninformative_term(regions, flags, T3, scale).item() == pytest.approx(0.0, abs=1e-6)
    # a region equal to prompt 0 at scale 1: q = softmax([1, 0, 0])
    reg = EYE[0].view(1, 1, 4)
    got = loss.uninformative_term(reg, torch.tensor([[True]]), T3, torch.tensor(1.0)).item()
    logq = torch.log_softmax(torch.tensor([1.0, 0.0, 0.0]), 0)
    want = float(sum((1 / 3) * (math.log(1 / 3) - lq) for lq in logq))
    assert got == pytest.approx(want, rel=1e-5) and got > 0
    # only flagged regions count; no flagged region -> 0, still connected to the graph
    z = EYE[0].view(1, 1, 4).clone().requires_grad_(True)
    zero = loss.uninformative_term(z, torch.tensor([[False]]), T3, scale)
    assert zero.item() == 0.0 and zero.requires_grad


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_align_term_small_when_aligned_and_ignores_spurious_regions(pooling):
    loss = RaVLLoss(align_pooling=pooling)
    scale = torch.tensor(100.0)
    labels = torch.tensor([0, 2])
    # image 0: region 0 shows class 0, region 1 is spurious and looks like class 1 (ignored)
    # image 1: region 0 shows class 2, region 1 is background orthogonal to all prompts
    regions = torch.stack([torch.stack([EYE[0], EYE[1]]), torch.stack([EYE[2], EYE[3]])])
    flags = torch.tensor([[False, True], [False, False]])
    aligned = loss.align_term(regions, flags, T3, labels, scale).item()
    assert aligned < 1e-6
    # without the flag, image 0's spurious region makes classes 0 and 1 tie: CE = ln 2 for that image
    unflagged = loss.align_term(regions, torch.zeros_like(flags), T3, labels, scale).item()
    assert unflagged == pytest.approx(math.log(2) / 2, rel=1e-4)
    # wrong labels -> large loss
    assert loss.align_term(regions, flags, T3, torch.tensor([1, 0]), scale).item() > 10.0
    # every region of an image spurious: the image is left out; all spurious -> 0
    only_first = loss.align_term(regions, torch.tensor([[False, True], [True, True]]), T3, labels, scale)
    assert only_first.item() < 1e-6
    assert loss.align_term(regions, torch.ones_like(flags), T3, labels, scale).item() == 0.0


def test_counterfactual_term_by_hand():
    loss = RaVLLoss()
    scale = torch.tensor(1.0)
    img = torch.stack([EYE[0], EYE[3]])
    # the spurious cells change nothing: 0
    assert loss.counterfactual_term(img, img.clone(), T3, scale).item() == pytest.approx(0.0, abs=1e-7)
    # masked image says class 1, full image class 0: KL(p_masked || p_image)
    masked = torch.stack([EYE[1], EYE[3]])
    p_img = torch.softmax(torch.tensor([1.0, 0.0, 0.0]), 0)
    p_msk = torch.softmax(torch.tensor([0.0, 1.0, 0.0]), 0)
    want = float((p_msk * (p_msk.log() - p_img.log())).sum()) / 2  # second image: both uniform -> 0
    img_grad = img.clone().requires_grad_(True)
    masked_grad = masked.clone().requires_grad_(True)
    got = loss.counterfactual_term(img_grad, masked_grad, T3, scale)
    assert got.item() == pytest.approx(want, rel=1e-5)
    got.backward()
    assert img_grad.grad.abs().sum() > 0 and masked_grad.grad is None  # the masked side is the fixed target
    assert loss.counterfactual_term(img[:0], img[:0], T3, scale).item() == 0.0


def test_masked_image_fills_spurious_cells():
    from PIL import Image

    from trustvl.training.ravl import masked_image, region_crops

    image = Image.new("RGB", (8, 8), (255, 0, 0))
    out = np.asarray(masked_image(image, [False, True, False, True], 2, fill=(1, 2, 3)))
    np.testing.assert_array_equal(out[:4, 4:], np.broadcast_to([1, 2, 3], (4, 4, 3)))  # cell 1 (top-right)
    np.testing.assert_array_equal(out[4:, 4:], np.broadcast_to([1, 2, 3], (4, 4, 3)))  # cell 3
    np.testing.assert_array_equal(out[:, :4], np.broadcast_to([255, 0, 0], (8, 4, 3)))
    assert [c.size for c in region_crops(image)] == [(4, 4)] * 4
    assert np.asarray(image).max() == 255 and np.asarray(image)[0, 7, 1] == 0  # input untouched


def test_clip_term_same_text_positives_and_plain_clip():
    from trustvl.training.losses import clip_contrastive_loss

    torch.manual_seed(0)
    img, cap = torch.randn(4, 8), torch.randn(4, 8)
    distinct = torch.arange(4).view(4, 1)
    scale = torch.tensor(10.0)
    plain = clip_contrastive_loss(img, cap, scale)
    assert RaVLLoss().clip_term(img, cap, scale, distinct).item() == pytest.approx(plain.item(), rel=1e-5)
    diag = RaVLLoss(clip_positives="diagonal")
    assert diag.clip_term(img, cap, scale, torch.zeros(4, 1)).item() == pytest.approx(plain.item(), rel=1e-5)
    # two classes with identical captions; images aligned with their class caption -> ~0 with same_text,
    # but plain CLIP cannot separate identical captions (>= ln 2)
    cls = torch.eye(8)[:2]
    caps = cls[[0, 0, 1, 1]]
    ids = torch.tensor([[5], [5], [6], [6]])
    big = torch.tensor(100.0)
    assert RaVLLoss().clip_term(caps, caps, big, ids).item() < 1e-6
    assert diag.clip_term(caps, caps, big, ids).item() == pytest.approx(math.log(2), rel=1e-4)


def test_loss_validation():
    with pytest.raises(TrustVLInputError, match="align_pooling"):
        RaVLLoss(align_pooling="sum")
    with pytest.raises(TrustVLInputError, match="clip_positives"):
        RaVLLoss(clip_positives="all")
    with pytest.raises(TrustVLInputError, match="align_input"):
        RaVLLoss(align_input="image")
    with pytest.raises(TrustVLInputError, match="uninf_mode"):
        RaVLLoss(uninf_mode="entropy")
    default = RaVLLoss()  # masked-image alignment + uniform crops + counterfactual
    assert (default.align_input, default.uninf_mode) == ("masked_image", "both")
    assert default.uses_regions and default.uses_masked
    crops = RaVLLoss(align_input="regions", uninf_mode="uniform")
    assert crops.uses_regions and not crops.uses_masked
    image = RaVLLoss(align_input="masked_image", uninf_mode="counterfactual")
    assert image.uses_masked and not image.uses_regions and image.uses_flags
    with pytest.raises(TrustVLInputError, match="lambda_uninf"):
        RaVLLoss(lambda_uninf=-1.0)
    assert not RaVLLoss(lambda_align=0, lambda_uninf=0).uses_regions
    with pytest.raises(TrustVLInputError, match="name"):
        class_prompts(["a", "b"], "a photo of {label}")
    with pytest.raises(TrustVLInputError, match="at least 2"):
        class_prompts(["a"])


# ------------------------------------------------------------------------------------------ region flags
def _toy_discovery():
    """2 classes; region kinds: 0 = class-0 digit, 1 = class-1 digit, 2 = artefact that makes the model say 1,
    3 = background. Every image has its digit and either the artefact or background; half the class-1 images
    without the artefact are mistaken for class 0."""
    from trustvl.discovery import discover_spurious_regions

    kinds, img, labels, preds = [], [], [], []
    for i in range(24):
        y, art = i % 2, (i // 2) % 2 == 0
        labels.append(y)
        preds.append(1 if art else (0 if y == 1 and (i // 4) % 2 == 0 else y))
        kinds += [y, 2 if art else 3]
        img += [i, i]
    kinds = np.array(kinds)
    emb = np.eye(4, dtype=np.float32)[kinds]
    scores = np.array([[0.8, 0.1], [0.4, 0.8], [0.0, 0.9], [0.3, 0.3]], dtype=np.float32)[kinds]
    res = discover_spurious_regions(emb, np.array(img), np.array(labels), np.array(preds), scores, 2, k=4)
    return res, emb, kinds


def test_flags_from_discovery_result_by_nearest_medoid():
    res, emb, kinds = _toy_discovery()
    assert res.clusters, res.message
    kept_kinds = {int(kinds[c.medoid_index]) for c in res.clusters}
    assert 2 in kept_kinds and 0 not in kept_kinds and 3 not in kept_kinds
    rng = np.random.default_rng(0)
    new_kinds = np.array([0, 1, 2, 3, 2, 3])
    new = np.eye(4, dtype=np.float32)[new_kinds] + 0.05 * rng.normal(size=(6, 4)).astype(np.float32)
    flags = spurious_region_flags(res, emb, new)
    assert flags.dtype == bool and flags.shape == (6,)
    np.testing.assert_array_equal(flags, np.isin(new_kinds, sorted(kept_kinds)))
    # an explicit cluster selection; the portable medoids give the same flags after a save/load round trip
    medoids = SpuriousMedoids.from_result(res, emb, model="toy")
    art = next(c.cluster_id for c in res.all_clusters if kinds[c.medoid_index] == 2)
    only_art, assigned = medoids.flags(new, clusters=[art])
    np.testing.assert_array_equal(only_art, new_kinds == 2)
    assert (kinds[[res.all_clusters[a].medoid_index for a in assigned]] == new_kinds).all()
    top1 = medoids.flags(new, top=1)[0]
    assert top1.sum() == (new_kinds == int(kinds[res.clusters[0].medoid_index])).sum()


def test_medoids_save_load_and_no_spurious_cluster(tmp_path):
    res, emb, kinds = _toy_discovery()
    medoids = SpuriousMedoids.from_result(res, emb, model="toy")
    medoids.save(tmp_path / "spurious_medoids.npz")
    again = SpuriousMedoids.load(tmp_path)
    np.testing.assert_allclose(again.medoid_embeds, medoids.medoid_embeds)
    np.testing.assert_array_equal(again.kept, medoids.kept)
    assert again.model == "toy" and again.n_spurious == medoids.n_spurious
    # no kept cluster: a clear error, or all-False with allow_empty (documented no-op)
    none = SpuriousMedoids(medoids.medoid_embeds, np.zeros(medoids.k, bool), np.full(medoids.k, -1))
    with pytest.raises(TrustVLInputError, match="no spurious cluster"):
        none.flags(emb)
    assert not none.flags(emb, allow_empty=True)[0].any()
    # a result with nothing to discover has no clusters at all
    from trustvl.discovery import discover_spurious_regions

    labels = np.array([0, 1] * 4)
    nothing = discover_spurious_regions(emb[:8], np.arange(8), labels, labels, np.zeros((8, 2)), 2)
    with pytest.raises(TrustVLInputError, match="no clustering"):
        spurious_region_flags(nothing, emb[:8], emb[:2])
    with pytest.raises(TrustVLInputError, match="region_embeds"):
        SpuriousMedoids.from_result(res, emb[:5])
    with pytest.raises(TrustVLInputError, match="embedding size"):
        medoids.flags(np.ones((2, 7), np.float32))
    with pytest.raises(TrustVLInputError, match="does not exist"):
        SpuriousMedoids.load(tmp_path / "nowhere")


# ---------------------------------------------------------------------- training with a tiny CLIP
@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory):
    from trustvl.data_builders.ravl.spurious_digits import build_spurious_digits

    return build_spurious_digits(
        tmp_path_factory.mktemp("digits") / "sd",
        cramers_v=0.9,
        spurious_class=7,
        classes=[1, 7],
        n_train=24,
        n_test=32,
        image_size=32,
        seed=0,
        progress=False,
    )


def _tiny_medoids(model, processor, ds, kept):
    """Medoids = embeddings of the 4 quadrants of image 0 of ``ds`` (one flagged as spurious)."""
    from trustvl.modeling.embedding import embed_images
    from trustvl.training.ravl import region_crops

    emb = embed_images(model, processor, region_crops(ds[0]["image"]), progress=False).numpy()
    return SpuriousMedoids(emb, kept, np.where(kept, 0, -1), None)


def test_train_ravl_through_core_changes_only_lora(tiny_clip_dir, tiny_digits, tmp_path):
    from datasets import load_dataset
    from peft import PeftModel
    from transformers import CLIPModel, CLIPProcessor

    base = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    processor = CLIPProcessor.from_pretrained(tiny_clip_dir)
    train = load_dataset(str(tiny_digits), split="train")
    medoids = _tiny_medoids(base, processor, train, np.array([False, True, False, False]))
    medoids.save(tmp_path / "disc" / "spurious_medoids.npz")
    flags = compute_region_flags(base, processor, list(train["image"]), medoids)
    assert flags.shape == (24, 4) and flags.any() and not flags.all()

    cfg = RaVLConfig(
        base_model=str(tiny_clip_dir),
        dataset=str(tiny_digits),
        discovery=str(tmp_path / "disc"),
        output_dir=str(tmp_path / "run"),
        flag_model=str(tiny_clip_dir),
        max_steps=3,
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        warmup_steps=0,
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    summary = train_ravl(cfg)
    assert summary["global_step"] == 3 and math.isfinite(summary["final_loss"])
    assert summary["config"]["align_input"] == "masked_image" and summary["config"]["uninf_mode"] == "both"
    assert summary["n_spurious_clusters"] == 1
    assert summary["spurious_region_fraction"] == pytest.approx(flags.mean())
    assert {"clip_loss", "align_loss", "uninf_loss"} <= set(summary["last_log"])
    assert json.loads((tmp_path / "run" / "train_summary.json").read_text())["method"] == "ravl"
    # the default strategy acted on the one kept cluster (id 1); the model card lists it
    assert summary["flag_clusters"] == "top1_similar"
    assert [c["cluster_id"] for c in summary["acted_on_clusters"]] == [1]
    card = (tmp_path / "run" / "model" / "README.md").read_text()
    assert "flag_clusters=top1_similar" in card and "\n| 1 | 1 | n/a | 1 |" in card, card
    assert "model-index" not in card and "ravl" in card

    # a RaVL checkpoint is a plain CLIPModel (merged) plus a peft adapter on the original weights
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["model_type"] == "clip" and "auto_map" not in config
    merged = CLIPModel.from_pretrained(summary["model_dir"]).eval()
    assert summary["adapter_dir"] == str(tmp_path / "run" / "adapter")
    adapted = PeftModel.from_pretrained(
        CLIPModel.from_pretrained(tiny_clip_dir), summary["adapter_dir"]
    ).eval()
    lora_b = {k: v for k, v in adapted.state_dict().items() if ".lora_B." in k}
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b.values())  # B starts at 0: LoRA was trained
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "run" / "adapter" / "adapter_model.safetensors"))
    assert saved and all(
        ".lora_A." in k or ".lora_B." in k for k in saved
    )  # the base weights stay the base's
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = merged.get_image_features(pixel_values=pixels).pooler_output
        b = adapted.get_image_features(pixel_values=pixels).pooler_output
        c = base.get_image_features(pixel_values=pixels).pooler_output
    assert (a - b).abs().max().item() <= 1e-5 and (a - c).abs().max().item() > 1e-6


def test_collator_and_dataset_shapes(tiny_clip_dir, tiny_digits):
    from datasets import load_dataset
    from transformers import CLIPProcessor

    processor = CLIPProcessor.from_pretrained(tiny_clip_dir)
    train = load_dataset(str(tiny_digits), split="train")
    flags = np.zeros((24, 4), bool)
    flags[0, 1] = True
    rows = RegionImageDataset(train, processor, region_flags=flags, caption_column=None)
    assert rows.class_names == ["one", "seven"] and rows.prompts[1] == "a photo of the digit seven"
    batch = RaVLCollator(processor, rows.prompts)([rows[0], rows[1], rows[2]])
    assert batch["pixel_values"].shape == (3, 3, 32, 32)
    assert batch["region_pixel_values"].shape == (3, 4, 3, 32, 32)
    assert batch["region_spurious"].tolist()[0] == [False, True, False, False]
    assert batch["input_ids"].shape[0] == 3 + 2  # captions, then the class prompts
    lazy = RegionImageDataset(train, processor, region_flags=flags, cache=False)
    torch.testing.assert_close(lazy[0]["region_pixel_values"], rows[0]["region_pixel_values"])
    with pytest.raises(TrustVLInputError, match="region_flags"):
        RegionImageDataset(train, processor, region_flags=np.zeros((3, 4), bool))
    with pytest.raises(TrustVLInputError, match="column"):
        RegionImageDataset(train, processor, label_column="nope")


@pytest.mark.parametrize(
    ("align_input", "uninf_mode", "n_images"),
    [
        ("regions", "uniform", 4 + 16),  # images + every crop
        ("masked_image", "uniform", 4 + 3 + 2),  # images + the 3 spurious crops + 2 masked images
        ("masked_image", "counterfactual", 4 + 2),  # images + masked versions of the 2 flagged images
        ("masked_image", "both", 4 + 3 + 2),
        ("regions", "both", 4 + 16 + 2),
    ],
)
def test_loss_embeds_only_what_it_needs_in_one_forward(
    tiny_clip_dir, tiny_digits, align_input, uninf_mode, n_images
):
    from datasets import load_dataset
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(tiny_clip_dir)
    processor = CLIPProcessor.from_pretrained(tiny_clip_dir)
    train = load_dataset(str(tiny_digits), split="train").select(range(4))
    flags = np.zeros((4, 4), bool)
    q0 = train[0]["digit_quadrant"]  # flag a cell that is not empty, so masking changes row 0
    flags[0, q0] = flags[2, 0] = flags[2, 3] = True
    loss_fn = RaVLLoss(align_input=align_input, uninf_mode=uninf_mode)
    rows = RegionImageDataset(
        train,
        processor,
        region_flags=flags,
        with_regions=loss_fn.uses_regions,
        with_masked=loss_fn.uses_masked,
    )
    batch = RaVLCollator(processor, rows.prompts)([rows[i] for i in range(4)])
    seen = []
    handle = model.register_forward_pre_hook(
        lambda m, a, kw: seen.append(kw["pixel_values"].shape[0]), with_kwargs=True
    )
    loss, extras = loss_fn(model, batch)
    handle.remove()
    assert seen == [n_images]
    assert torch.isfinite(loss) and loss.requires_grad
    assert extras["spurious_region_fraction"].item() == pytest.approx(3 / 16)
    assert extras["uninf_loss"].item() >= 0 and extras["align_loss"].item() > 0
    if loss_fn.uses_masked:  # the masked image of row 0 differs from the image; row 1's is the image itself
        assert not torch.equal(batch["masked_pixel_values"][0], batch["pixel_values"][0])
        assert torch.equal(batch["masked_pixel_values"][1], batch["pixel_values"][1])


@pytest.mark.parametrize("align_input", ["masked_image", "regions"])
def test_loss_with_region_weights(tiny_clip_dir, tiny_digits, align_input):
    """Weights of 1 give the unweighted loss; fractional weights change it (score_weighted flags)."""
    from datasets import load_dataset
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(tiny_clip_dir)
    processor = CLIPProcessor.from_pretrained(tiny_clip_dir)
    train = load_dataset(str(tiny_digits), split="train").select(range(4))
    flags = np.zeros((4, 4), bool)
    flags[0, train[0]["digit_quadrant"]] = flags[2, 0] = flags[2, 3] = True
    loss_fn = RaVLLoss(align_input=align_input, uninf_mode="both")
    rows = RegionImageDataset(train, processor, region_flags=flags, with_regions=True, with_masked=True)
    batch = RaVLCollator(processor, rows.prompts)([rows[i] for i in range(4)])
    plain, _ = loss_fn(model, batch)
    same, _ = loss_fn(model, {**batch, "region_weight": batch["region_spurious"].float()})
    torch.testing.assert_close(same, plain)
    halved, extras = loss_fn(model, {**batch, "region_weight": batch["region_spurious"].float() * 0.5})
    assert torch.isfinite(halved) and halved.requires_grad
    assert extras["uninf_loss"].item() < loss_fn(model, batch)[1]["uninf_loss"].item()


def test_train_ravl_refuses_without_spurious_clusters(tiny_clip_dir, tiny_digits, tmp_path):
    from datasets import load_dataset
    from transformers import CLIPModel, CLIPProcessor

    base = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    processor = CLIPProcessor.from_pretrained(tiny_clip_dir)
    train = load_dataset(str(tiny_digits), split="train")
    _tiny_medoids(base, processor, train, np.zeros(4, bool)).save(tmp_path / "disc" / "spurious_medoids.npz")
    cfg = RaVLConfig(
        base_model=str(tiny_clip_dir),
        dataset=str(tiny_digits),
        discovery=str(tmp_path / "disc"),
        output_dir=str(tmp_path / "run"),
        max_steps=1,
        per_device_train_batch_size=8,
        disable_tqdm=True,
    )
    with pytest.raises(TrustVLInputError, match="no spurious cluster"):
        train_ravl(cfg)
    assert not (tmp_path / "run" / "model").exists()
    with pytest.raises(TrustVLInputError, match="discovery folder"):
        train_ravl(dataclasses.replace(cfg, discovery=str(tmp_path / "missing")))
    with pytest.raises(TrustVLInputError, match="discovery"):
        RaVLConfig(base_model=str(tiny_clip_dir), dataset=str(tiny_digits), output_dir=str(tmp_path / "r"))


def test_finetune_clip_full_changes_weights(tiny_clip_dir, tiny_digits, tmp_path):
    from transformers import CLIPModel

    from trustvl.training.ravl import CLIPFinetuneConfig, finetune_clip

    summary = finetune_clip(
        CLIPFinetuneConfig(
            base_model=str(tiny_clip_dir),
            dataset=str(tiny_digits),
            output_dir=str(tmp_path / "ft"),
            max_steps=2,
            per_device_train_batch_size=8,
            learning_rate=1e-3,
            warmup_steps=0,
            logging_steps=1,
            disable_tqdm=True,
        )
    )
    model = summary.pop("model")
    assert summary["global_step"] == 2 and summary["method"] == "standard_finetuning"
    assert summary["last_log"]["align_loss"] == 0.0 and summary["last_log"]["uninf_loss"] == 0.0
    saved = CLIPModel.from_pretrained(summary["model_dir"])
    base = CLIPModel.from_pretrained(tiny_clip_dir)
    w = "vision_model.encoder.layers.0.mlp.fc1.weight"
    assert not torch.equal(saved.state_dict()[w], base.state_dict()[w])
    torch.testing.assert_close(saved.state_dict()[w], model.state_dict()[w])


# ----------------------------------------------------------------------------------- discovery pipeline
def test_run_discovery_writes_files_and_evaluation(tiny_clip_dir, tiny_digits, tmp_path):
    from trustvl.evaluation.ravl import evaluate_group_accuracy, load_spurious_medoids, run_discovery

    out = tmp_path / "disc"
    result = run_discovery(str(tiny_clip_dir), str(tiny_digits), out, progress=False, device="cpu", k=4)
    for name in ("discovery.json", "clusters.png", "report.md", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prompts"] == ["a photo of the digit one", "a photo of the digit seven"]
    assert summary["n_regions"] == 4 * 32 == result.n_regions
    assert 0.0 <= summary["precision_at_10"] <= 1.0 and "baseline_precision_at_10" in summary
    assert "# RaVL discovery" in (out / "report.md").read_text()
    assert json.loads((out / "discovery.json").read_text())["n_images"] == 32
    if result.clustering is not None:
        medoids = load_spurious_medoids(out)
        assert medoids.k == 4 and medoids.n_spurious == len(result.clusters)
        assert medoids.model == str(tiny_clip_dir)
        # the cluster statistics every flag strategy needs travel with the medoids
        assert medoids.statistics is not None and medoids.statistics.class_names == result.class_names
        np.testing.assert_allclose(
            medoids.statistics.score,
            [c.score for c in sorted(result.all_clusters, key=lambda c: c.cluster_id)],
        )

    ev = evaluate_group_accuracy(str(tiny_clip_dir), str(tiny_digits), device="cpu")
    assert ev["n_images"] == 32 and len(ev["per_group"]) == 4  # 2 classes x rectangle present
    assert ev["worst_group_accuracy"] <= ev["overall_accuracy"] + 1e-9
    assert ev["worst_group_accuracy"] == min(ev["per_group"].values())
    # in-memory inputs: a (model, processor) pair and a DatasetDict give the same numbers
    from datasets import load_dataset
    from transformers import CLIPModel, CLIPProcessor

    pair = (CLIPModel.from_pretrained(tiny_clip_dir), CLIPProcessor.from_pretrained(tiny_clip_dir))
    again = evaluate_group_accuracy(pair, load_dataset(str(tiny_digits)), device="cpu")
    assert again["per_group"] == pytest.approx(ev["per_group"])
    with pytest.raises(TrustVLInputError, match="split"):
        evaluate_group_accuracy(pair, load_dataset(str(tiny_digits)), split="validation")
    with pytest.raises(TrustVLInputError, match="ClassLabel"):
        run_discovery(
            str(tiny_clip_dir), str(tiny_digits), tmp_path / "x", label_column="digit", progress=False
        )
    with pytest.raises(TrustVLInputError, match="column"):
        evaluate_group_accuracy(str(tiny_clip_dir), str(tiny_digits), attribute_columns=("nope",))
