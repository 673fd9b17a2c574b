"""The shared training core: losses, collator, and the Trainer-based train() on a tiny random CLIPModel."""

from __future__ import annotations

import math
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from trustvl.errors import TrustVLInputError  # noqa: E402
from trustvl.training import (  # noqa: E402
    ClipContrastiveLoss,
    ImageTextCollator,
    TrustVLTrainingArguments,
    clip_contrastive_loss,
    cosine_distance,
    early_stopping,
    gather_with_grad,
    group_mean_cohesion_loss,
    multi_positive_info_nce,
    train,
)

VOCAB, BOS, EOS, SEQ = 64, 62, 63, 8


def tiny_clip(seed: int = 0):
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config=dict(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=16,
            bos_token_id=BOS,
            eos_token_id=EOS,
            pad_token_id=0,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            num_channels=3,
        ),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    return CLIPModel(config)


def synthetic_pairs(n: int = 16, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        body = torch.randint(1, BOS, (SEQ - 2,), generator=g)
        ids = torch.cat([torch.tensor([BOS]), body, torch.tensor([EOS])])
        rows.append(
            {
                "pixel_values": torch.randn(3, 32, 32, generator=g),
                "input_ids": ids,
                "attention_mask": torch.ones(SEQ, dtype=torch.long),
                "group_id": i // 2,
            }
        )
    return rows


def config(tmp_path, name: str, **kw) -> TrustVLTrainingArguments:
    base = dict(
        output_dir=str(tmp_path / name),
        learning_rate=1e-3,
        per_device_train_batch_size=8,
        max_steps=4,
        logging_steps=1,
        save_strategy="no",
        lr_scheduler_type="constant",
        disable_tqdm=True,
        seed=0,
        use_cpu=True,
    )
    if "save_steps" in kw:
        base["save_strategy"] = "steps"
    if "eval_steps" in kw:
        base["eval_strategy"] = "steps"
    base.update(kw)
    return TrustVLTrainingArguments(**base)


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------------------------- losses
def test_clip_loss_hand_values():
    e = torch.eye(4, 8)
    assert clip_contrastive_loss(e, e, 1000.0).item() == pytest.approx(0.0, abs=1e-6)
    same = torch.ones(4, 8)
    assert clip_contrastive_loss(same, same, 50.0).item() == pytest.approx(math.log(4), rel=1e-5)
    # against an explicit two-direction cross-entropy
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    logits = 10.0 * an @ bn.t()
    t = torch.arange(5)
    ref = 0.5 * (
        torch.nn.functional.cross_entropy(logits, t) + torch.nn.functional.cross_entropy(logits.t(), t)
    )
    assert clip_contrastive_loss(a, b, torch.tensor(10.0)).item() == pytest.approx(ref.item(), rel=1e-5)
    with pytest.raises(TrustVLInputError):
        clip_contrastive_loss(a, b[:4], 10.0)


def test_multi_positive_info_nce():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    qn, kn = q / q.norm(dim=1, keepdim=True), k / k.norm(dim=1, keepdim=True)
    # one positive per row == standard InfoNCE; scale 20 == temperature 0.05
    ref = torch.nn.functional.cross_entropy(20.0 * qn @ kn.t(), torch.arange(6))
    eye = torch.eye(6, dtype=torch.bool)
    assert multi_positive_info_nce(q, k, eye, 20.0).item() == pytest.approx(ref.item(), rel=1e-5)
    assert multi_positive_info_nce(q, k, eye, 0.05).item() == pytest.approx(ref.item(), rel=1e-5)
    # self-pairs excluded when keys is None: groups {0,1},{2,3},{4,5}, one positive each
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    pos = groups[:, None] == groups[None, :]
    logits = 10.0 * qn @ qn.t()
    logits = logits.masked_fill(torch.eye(6, dtype=torch.bool), float("-inf"))
    ref = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0, 3, 2, 5, 4]))
    assert multi_positive_info_nce(q, None, pos, 10.0).item() == pytest.approx(ref.item(), rel=1e-5)
    # two positives: -log(sum of the two softmax probabilities)
    pos2 = torch.zeros(1, 6, dtype=torch.bool)
    pos2[0, [1, 3]] = True
    p = torch.softmax(10.0 * qn[:1] @ kn.t(), dim=1)[0]
    assert multi_positive_info_nce(q[:1], k, pos2, 10.0).item() == pytest.approx(
        -math.log(p[1] + p[3]), rel=1e-5
    )
    # no positives at all -> 0, still differentiable
    qq = q.clone().requires_grad_(True)
    loss = multi_positive_info_nce(qq, None, torch.eye(6, dtype=torch.bool), 10.0)
    assert loss.item() == 0.0
    loss.backward()


def test_group_cohesion_and_cosine_distance():
    v = torch.tensor([[1.0, 2.0, 0.0]])
    same = torch.cat(
        [v, 3 * v, torch.tensor([[0.0, 0.0, 1.0]])]
    )  # group 0 identical directions, group 1 singleton
    assert group_mean_cohesion_loss(same, torch.tensor([0, 0, 1])).item() == pytest.approx(0.0, abs=1e-7)
    assert group_mean_cohesion_loss(same, torch.tensor([0, 1, 2])).item() == 0.0
    # two orthogonal unit vectors: mean at (.5,.5), squared distance 0.5 each
    ortho = torch.tensor([[1.0, 0.0], [0.0, 5.0], [7.0, 7.0]])
    assert group_mean_cohesion_loss(ortho, torch.tensor([3, 3, 9])).item() == pytest.approx(0.5, rel=1e-6)
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert cosine_distance(a, a * 2).item() == pytest.approx(0.0, abs=1e-7)
    assert cosine_distance(a, -a).item() == pytest.approx(2.0)
    assert cosine_distance(a, a.flip(1)).item() == pytest.approx(1.0)
    x = torch.randn(3, 4)
    assert gather_with_grad(x) is x  # not distributed


# ---------------------------------------------------------------------------------------------- collator
def test_collator_fast_path_and_passthrough():
    rows = synthetic_pairs(4)
    rows[0]["input_ids"] = rows[0]["input_ids"][:5]
    rows[0]["attention_mask"] = rows[0]["attention_mask"][:5]
    for r in rows:
        r["weight"], r["name"], r["flag"] = 0.5, "x", True
    batch = ImageTextCollator(pad_token_id=0)(rows)
    assert batch["pixel_values"].shape == (4, 3, 32, 32)
    assert batch["input_ids"].shape == (4, SEQ) and batch["input_ids"][0, 5:].eq(0).all()
    assert batch["attention_mask"][0].tolist() == [1] * 5 + [0] * 3
    assert batch["group_id"].dtype == torch.long and batch["group_id"].tolist() == [0, 0, 1, 1]
    assert batch["weight"].dtype == torch.float32 and batch["flag"].dtype == torch.bool
    assert "name" not in batch
    assert ImageTextCollator(keep_other=True)(rows)["name"] == ["x"] * 4
    with pytest.raises(TrustVLInputError):
        ImageTextCollator(passthrough=["name"])(rows)


def test_collator_raw_images_and_captions():
    from PIL import Image
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CLIPImageProcessor, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "a", "doctor", "in", "the", "kitchen", "chef"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = SimpleNamespace(tokenizer=tokenizer, image_processor=image_processor)
    rng = np.random.default_rng(0)
    rows = [
        {
            "image": Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)),
            "caption": "a doctor",
            "label": 1,
        },
        {
            "image": rng.integers(0, 255, (36, 36, 3), dtype=np.uint8),
            "caption": "a chef in the kitchen",
            "label": 0,
        },
    ]
    batch = ImageTextCollator(processor, max_length=4)(rows)
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    assert batch["input_ids"].tolist() == [[2, 3, 0, 0], [2, 7, 4, 5]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert batch["label"].tolist() == [1, 0]
    # an image_transform returning (C, H, W) tensors bypasses the image processor
    to_tensor = lambda im: torch.zeros(3, 8, 8)  # noqa: E731
    batch = ImageTextCollator(tokenizer, image_transform=to_tensor)(rows)
    assert batch["pixel_values"].shape == (2, 3, 8, 8) and batch["input_ids"].shape == (2, 5)
    with pytest.raises(TrustVLInputError):
        ImageTextCollator(tokenizer)(rows)  # images but no image processor


# ---------------------------------------------------------------------------------------------- training
def test_contrastive_loss_decreases_and_extras_logged(tmp_path):
    model = tiny_clip()
    result = train(
        model,
        synthetic_pairs(16),
        ClipContrastiveLoss(),
        config(tmp_path, "dec", max_steps=30),
        data_collator=ImageTextCollator(),
    )
    losses = [e["loss"] for e in result.log_history if "loss" in e]
    assert result.global_step == 30 and len(losses) == 30
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
    assert result.final_loss == losses[-1]
    assert all("clip_loss" in e and "logit_scale" in e for e in result.log_history if "loss" in e)
    assert os.path.isfile(os.path.join(result.final_model_dir, "model.safetensors"))


class _StepAwareLoss(ClipContrastiveLoss):
    """Records the optimiser step the core reports before each training call."""

    def __init__(self):
        super().__init__()
        self.steps: list[int] = []

    def set_step(self, step: int) -> None:
        self.steps.append(step)


def test_core_tells_step_aware_losses_the_optimiser_step(tmp_path):
    loss = _StepAwareLoss()
    cfg = config(tmp_path, "steps", max_steps=3, gradient_accumulation_steps=2)
    train(tiny_clip(), synthetic_pairs(48), loss, cfg, data_collator=ImageTextCollator())
    assert loss.steps == [0, 0, 1, 1, 2, 2]  # both micro-batches of a step see that step


def test_same_seed_same_weights(tmp_path):
    weights = []
    for run in range(2):
        model = tiny_clip(seed=1)
        train(
            model,
            synthetic_pairs(16),
            ClipContrastiveLoss(),
            config(tmp_path, f"det{run}", max_steps=4),
            data_collator=ImageTextCollator(),
        )
        weights.append(state(model))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not torch.equal(
        weights[0]["text_projection.weight"], state(tiny_clip(seed=1))["text_projection.weight"]
    )


def test_resume_continues_from_last_checkpoint(tmp_path):
    data, loss_fn, collate = synthetic_pairs(16), ClipContrastiveLoss(), ImageTextCollator()
    first = train(
        tiny_clip(),
        data,
        loss_fn,
        config(tmp_path, "run", max_steps=4, save_steps=2),
        data_collator=collate,
        resume=True,
    )  # nothing to resume yet: starts fresh
    assert first.global_step == 4 and first.resumed_from is None
    assert sorted(os.listdir(tmp_path / "run")) == ["checkpoint-2", "checkpoint-4", "final"]

    resumed_model = tiny_clip()
    second = train(
        resumed_model,
        data,
        loss_fn,
        config(tmp_path, "run", max_steps=8, save_steps=2),
        data_collator=collate,
        resume=True,
    )
    assert second.resumed_from.endswith("checkpoint-4")
    assert second.global_step == 8
    assert [e["step"] for e in second.log_history if "loss" in e] == list(range(1, 9))

    straight = tiny_clip()
    train(straight, data, loss_fn, config(tmp_path, "straight", max_steps=8), data_collator=collate)
    a, b = state(resumed_model), state(straight)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_lora_trains_only_adapters(tmp_path):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(tiny_clip(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    before = state(model)
    result = train(
        model,
        synthetic_pairs(16),
        ClipContrastiveLoss(),
        config(tmp_path, "lora", max_steps=3),
        data_collator=ImageTextCollator(),
    )
    after = state(model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("lora_" in k for k in changed)
    assert any("lora_B" in k for k in changed)
    assert os.path.isfile(os.path.join(result.final_model_dir, "adapter_model.safetensors"))


def test_early_stopping_on_metric_and_eval_loss(tmp_path):
    calls = []

    def metric_fn(model):
        assert not model.training
        calls.append(1)
        return {"score": 1.0}  # never improves after the first evaluation

    data = synthetic_pairs(16)
    result = train(
        tiny_clip(),
        data,
        ClipContrastiveLoss(),
        config(tmp_path, "es", max_steps=40, eval_steps=2, save_steps=2, logging_steps=2),
        data_collator=ImageTextCollator(),
        eval_dataset=data[:8],
        compute_metrics=metric_fn,
        callbacks=[early_stopping(2, "score")],
    )
    assert result.global_step == 6 and len(calls) == 3
    assert result.best_metric == 1.0 and result.best_model_checkpoint.endswith("checkpoint-2")
    evals = [e for e in result.log_history if "eval_score" in e]
    assert len(evals) == 3 and all("eval_loss" in e and "eval_clip_loss" in e for e in evals)
    # evaluation by metric only (no eval_dataset)
    only = train(
        tiny_clip(),
        data,
        ClipContrastiveLoss(),
        config(tmp_path, "metric_only", eval_steps=2),
        data_collator=ImageTextCollator(),
        compute_metrics=metric_fn,
    )
    assert [e["step"] for e in only.log_history if "eval_score" in e] == [2, 4]
    with pytest.raises(TrustVLInputError):  # evaluation asked for, nothing to evaluate
        train(tiny_clip(), data, ClipContrastiveLoss(), config(tmp_path, "es2", eval_steps=2))
    with pytest.raises(TrustVLInputError):
        train(tiny_clip(), data, ClipContrastiveLoss(), config(tmp_path, "es3"), trainable_parameters="some")


def test_loss_must_go_through_model_forward(tmp_path):
    def bypassing_loss(model, batch):
        text = model.get_text_features(input_ids=batch["input_ids"]).pooler_output
        image = model.get_image_features(pixel_values=batch["pixel_values"]).pooler_output
        return clip_contrastive_loss(image, text, 10.0), {}

    with pytest.raises(TrustVLInputError, match="without calling the model"):
        train(
            tiny_clip(),
            synthetic_pairs(16),
            bypassing_loss,
            config(tmp_path, "bypass", max_steps=1),
            data_collator=ImageTextCollator(),
        )


# ---------------------------------------------------------------------------------------------- DDP (2 CPU processes)
def _ddp_config(out_dir: str, world: int) -> TrustVLTrainingArguments:
    return TrustVLTrainingArguments(
        output_dir=out_dir,
        optim="sgd",  # plain SGD: no Adam normalisation amplifying float noise, so weights compare tightly
        learning_rate=0.05,
        per_device_train_batch_size=8 // world,
        max_steps=3,
        logging_steps=1,
        save_strategy="no",
        lr_scheduler_type="constant",
        disable_tqdm=True,
        seed=0,
        use_cpu=True,
    )


def _ddp_worker(out_dir: str) -> None:
    """Body run by each torchrun process (see test_ddp_matches_single_process)."""
    import json

    from safetensors.torch import save_file

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    model = tiny_clip()
    result = train(
        model,
        synthetic_pairs(16),
        ClipContrastiveLoss(gather_across_devices=True),
        _ddp_config(os.path.join(out_dir, "run"), world),
        data_collator=ImageTextCollator(),
    )
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        os.path.join(out_dir, f"rank{rank}.safetensors"),
    )
    if rank == 0:
        with open(os.path.join(out_dir, "history.json"), "w") as f:
            json.dump(result.log_history, f)


@pytest.mark.slow
def test_ddp_matches_single_process(tmp_path):
    """torchrun, 2 gloo processes × 4 rows with global-batch negatives == 1 process × 8 rows; ranks stay in sync."""
    import json
    import subprocess
    import sys

    from safetensors.torch import load_file

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            __file__,
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert all(torch.equal(r0[k], r1[k]) for k in r0)

    single = tiny_clip()
    ref = train(
        single,
        synthetic_pairs(16),
        ClipContrastiveLoss(),
        _ddp_config(str(tmp_path / "single"), 1),
        data_collator=ImageTextCollator(),
    )
    ref_state = state(single)
    assert all(torch.allclose(r0[k], ref_state[k], atol=1e-6) for k in r0)
    init = state(tiny_clip())
    assert max((r0[k] - init[k]).abs().max().item() for k in r0) > 1e-3  # and training did move the weights
    history = json.load(open(tmp_path / "history.json"))
    ddp_losses = [e["loss"] for e in history if "loss" in e]
    assert ddp_losses == pytest.approx([e["loss"] for e in ref.log_history if "loss" in e], rel=1e-4)
    assert all("clip_loss" in e for e in history if "loss" in e)
    assert os.path.isfile(tmp_path / "run" / "final" / "model.safetensors")


if __name__ == "__main__":  # entry point of the torchrun processes of test_ddp_matches_single_process
    import sys

    _ddp_worker(sys.argv[1])


def test_resume_skips_a_checkpoint_killed_while_saving(tmp_path):
    from trustvl.training.core import last_complete_checkpoint

    data, loss_fn, collate = synthetic_pairs(16), ClipContrastiveLoss(), ImageTextCollator()
    cfg = config(tmp_path, "run", max_steps=4, save_steps=2, logging_steps=1)
    train(tiny_clip(), data, loss_fn, cfg, data_collator=collate)
    run = tmp_path / "run"
    # a kill during the save of checkpoint-4: weights written, trainer_state.json cut short
    state_file = run / "checkpoint-4" / "trainer_state.json"
    state_file.write_text(state_file.read_text()[:20])
    assert last_complete_checkpoint(run).endswith("checkpoint-2")

    resumed_model = tiny_clip()
    resumed = train(
        resumed_model, data, loss_fn, config(tmp_path, "run", max_steps=6, save_steps=2, logging_steps=1),
        data_collator=collate, resume=True,
    )  # fmt: skip
    straight = tiny_clip()
    train(
        straight,
        data,
        loss_fn,
        config(tmp_path, "straight", max_steps=6, logging_steps=1),
        data_collator=collate,
    )
    a, b = state(resumed_model), state(straight)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # identical to an uninterrupted run
    assert resumed.resumed_from.endswith("checkpoint-2") and resumed.global_step == 6
    logged = [e["loss"] for e in resumed.log_history if "loss" in e]
    assert len(logged) == 6  # steps 1-2 from before the resume, 3-6 after
    assert abs(resumed.mean_loss - sum(logged) / 6) < 1e-9
    assert (run / "checkpoint-4" / "trainer_state.json").read_text().startswith("{")  # saved anew, complete
