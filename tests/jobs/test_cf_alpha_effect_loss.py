"""CF_α additions of issue 26: the attribute-effect term L_effect, the α-path power and the linear α path."""

from __future__ import annotations

import pytest
import torch
from conftest import FakeClip
from datasets import ClassLabel, Dataset, Features, Image, Value
from PIL import Image as PILImage

from trustvl.errors import TrustVLInputError
from trustvl.training.cf_alpha import CFAlphaConfig, CFAlphaLoss, CounterfactualSets
from trustvl.training.cf_alpha.data import CounterfactualSetCollator, collate_prefix_cached_sets
from trustvl.training.cf_alpha.loss import _EFFECT_EPS, attribute_effect_loss


def test_effect_is_the_mean_set_centred_score_shift_of_each_level():
    # two sets of two variants, one caption; attribute 0 shifts the score by +-0.5 around each set's mean,
    # attribute 1 is balanced against it so its level means cancel
    logits = torch.tensor([[1.5], [0.5], [3.5], [2.5]])
    sets = torch.tensor([0, 0, 1, 1])
    attributes = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0]])
    loss = attribute_effect_loss(logits, sets, attributes)
    floor = _EFFECT_EPS**0.5
    # attribute 0: both levels at |0.5|; attribute 1: level 0 = mean(-0.5, +0.5) = 0, level 1 = 0
    assert loss.item() == pytest.approx(0.5 * ((0.25 + _EFFECT_EPS) ** 0.5 + floor), rel=1e-6)
    # the base image's own score (a per-set offset) never counts
    shifted = logits + torch.tensor([[10.0], [10.0], [-4.0], [-4.0]])
    assert attribute_effect_loss(shifted, sets, attributes).item() == pytest.approx(loss.item(), rel=1e-6)
    # no attribute moves the scores: only the ε floor is left
    flat = torch.tensor([[1.0], [1.0], [3.0], [3.0]])
    assert attribute_effect_loss(flat, sets, attributes).item() == pytest.approx(floor, rel=1e-6)


def test_small_effects_get_the_same_push_as_large_ones():
    """The gradient on each attribute's level means has the same size whatever the effect's size (unlike a
    variance, whose gradient shrinks with the effect): small residual effects keep being removed."""
    sets = torch.arange(8).repeat_interleave(2)
    big = torch.tensor([0, 1]).repeat(8)  # planted: within every set
    small = torch.tensor([0, 1, 1, 0]).repeat(4)  # balanced against the planted one
    attributes = torch.stack([big, small], 1)
    effect_big, effect_small = 2.0, 0.02
    logits = (effect_big * big + effect_small * small).float()[:, None].requires_grad_(True)
    attribute_effect_loss(logits, sets, attributes).backward()
    g = logits.grad[:, 0]
    grad_big = (g[big == 1].mean() - g[big == 0].mean()).abs()
    grad_small = (g[small == 1].mean() - g[small == 0].mean()).abs()
    assert grad_small.item() == pytest.approx(grad_big.item(), rel=0.01)


def test_cf_alpha_loss_adds_the_weighted_effect_term_and_needs_the_levels():
    img = torch.tensor([[1.0, 0.2, 0.0], [1.0, -0.2, 0.0], [0.2, 1.0, 0.0], [-0.2, 1.0, 0.0]])
    txt = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    batch = {
        "set_index": torch.tensor([0, 0, 1, 1]),
        "variant_attributes": torch.tensor([[0], [1], [0], [1]]),
    }
    plain = CFAlphaLoss(beta_clip=0.0, beta_cf=1.0, beta_score=0.0)
    with_effect = CFAlphaLoss(beta_clip=0.0, beta_cf=1.0, beta_score=0.0, beta_effect=3.0)
    loss0, logs0 = plain(FakeClip(img, txt), batch)
    loss1, logs1 = with_effect(FakeClip(img, txt), batch)
    assert "effect_loss" not in logs0 and logs1["effect_loss"].item() > 0.01
    assert loss1.item() == pytest.approx(loss0.item() + 3.0 * logs1["effect_loss"].item(), rel=1e-5)
    with pytest.raises(TrustVLInputError, match="variant_attributes"):
        with_effect(FakeClip(img, txt), {"set_index": batch["set_index"]})
    with pytest.raises(TrustVLInputError, match="beta_effect"):
        CFAlphaLoss(beta_effect=-1.0)
    with pytest.raises(TrustVLInputError, match="effect_attributes"):
        CFAlphaConfig(dataset="d", output_dir="o", beta_effect=1.0)


def _toy_with_levels():
    img = PILImage.new("RGB", (8, 8))
    return Dataset.from_dict(
        {
            "image": [img] * 6,
            "caption": ["a", "a", "a", "b", "b", "b"],
            "base_id": [0, 0, 0, 1, 1, 1],
            "age": [0, 1, 0, 1, 0, 1],
        },
        features=Features(
            {
                "image": Image(),
                "caption": Value("string"),
                "base_id": Value("int64"),
                "age": ClassLabel(names=["young", "old"]),
            }
        ),
    )


def test_sets_carry_each_variants_levels_into_both_batch_kinds():
    ds = _toy_with_levels()
    with pytest.raises(TrustVLInputError, match="'height'"):
        CounterfactualSets(ds, attribute_columns=["height"])
    assert "attributes" not in CounterfactualSets(ds, variants_per_set=3)[0]  # off unless asked
    sets = CounterfactualSets(ds, variants_per_set=3, attribute_columns=["age"])
    for i, base in enumerate(sets.bases):
        rows = sets.rows[base]
        assert sets[i]["attributes"][:, 0].tolist() == [ds["age"][r] for r in rows]

    class _Processor:
        def image_processor(self, images, return_tensors):
            return {"pixel_values": torch.zeros(len(images), 3, 8, 8)}

        def tokenizer(self, texts, **_):
            return {"input_ids": torch.zeros(len(texts), 2, dtype=torch.long), "attention_mask": None}

    batch = CounterfactualSetCollator(_Processor())([sets[0], sets[1]])
    assert (
        batch["variant_attributes"].tolist()
        == torch.cat([sets[0]["attributes"], sets[1]["attributes"]]).tolist()
    )
    cached = [
        {
            "hidden_states": torch.zeros(3, 2, 4),
            "text_embeds": torch.zeros(4),
            "caption": c,
            "start_layer": 1,
            "attributes": sets[i]["attributes"],
        }
        for i, c in enumerate(["a", "b"])
    ]
    assert collate_prefix_cached_sets(cached)["variant_attributes"].shape == (6, 1)


def test_alpha_path_power_moves_the_draws_towards_low_alpha():
    uniform = CFAlphaLoss(alpha_range=(0.0, 1.0), seed=3)
    squared = CFAlphaLoss(alpha_range=(0.0, 1.0), alpha_path_power=2.0, seed=3)
    draws = []
    for step in range(400):
        uniform.set_step(step)
        squared.set_step(step)
        draws.append((uniform.draw_alpha(), squared.draw_alpha()))
    # the same u per (seed, step): power 2 squares the uniform draw
    assert all(b == pytest.approx(a**2, rel=1e-12) for a, b in draws)
    low = sum(b < 0.25 for _, b in draws) / len(draws)
    assert 0.42 < low < 0.58  # P(u² < 1/4) = 1/2
    with pytest.raises(TrustVLInputError, match="alpha_path_power"):
        CFAlphaLoss(alpha_range=(0.0, 1.0), alpha_path_power=0.0)


def test_effect_on_own_caption_ignores_shifts_against_other_captions():
    txt = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # set 0's variants (caption 0) differ only in their score against caption 1; set 1's are identical
    img = torch.tensor([[1.0, 0.3, 0.0], [1.0, -0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    batch = {
        "set_index": torch.tensor([0, 0, 1, 1]),
        "variant_attributes": torch.tensor([[0], [1], [0], [1]]),
    }
    common = dict(beta_clip=0.0, beta_cf=1.0, beta_score=0.0, beta_effect=1.0)
    every = CFAlphaLoss(**common)(FakeClip(img, txt), batch)[1]["effect_loss"].item()
    own = CFAlphaLoss(**common, effect_own_caption=True)(FakeClip(img, txt), batch)[1]["effect_loss"].item()
    assert own == pytest.approx(_EFFECT_EPS**0.5, rel=1e-4) and every > 0.1
    # a shift against the own caption counts
    img2 = torch.tensor([[1.0, 0.0, 0.3], [1.0, 0.0, -0.3], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    img2[:2, 0] += torch.tensor([0.2, -0.2])
    own2 = CFAlphaLoss(**common, effect_own_caption=True)(FakeClip(img2, txt), batch)[1]["effect_loss"].item()
    assert own2 > 0.01


class _RecordingAlphaClip(FakeClip):
    """A fake CLIP whose embeddings do not depend on α (the delta does nothing) and that records every α the
    loss sets and whether gradients were on for the forward that followed."""

    def __init__(self, img, txt):
        super().__init__(img, txt)
        self.alphas: list[float] = []
        self.grad_on: list[bool] = []

    def set_alpha(self, alpha):
        self.alphas.append(alpha)
        return self

    def forward(self, **kwargs):
        self.grad_on.append(torch.is_grad_enabled())
        return super().forward(**kwargs)


def test_linear_path_asks_the_alpha_model_for_one_minus_alpha_of_the_base_offsets():
    torch.manual_seed(0)
    img, txt = torch.randn(6, 5), torch.randn(3, 5)
    batch = {"set_index": torch.tensor([0, 0, 1, 1, 2, 2])}
    invariance = CFAlphaLoss(beta_clip=0.0, beta_cf=1.0, beta_score=1.0)
    _, inv_logs = invariance(FakeClip(img, txt), batch)
    linear = CFAlphaLoss(
        beta_clip=0.0, beta_cf=1.0, beta_score=1.0, alpha_range=(0.0, 1.0), alpha_path_target="linear", seed=4
    )
    model = _RecordingAlphaClip(img, txt)
    drawn = []
    for step in range(12):
        linear.set_step(step)
        _, logs = linear(model, batch)
        alpha = model.alphas[-1]
        drawn.append(alpha)
        # the model's offsets are the base's, so what is left of them after keeping (1 − α) is α·offset
        assert logs["cf_loss"].item() == pytest.approx(
            alpha**2 * inv_logs["cf_loss"].item(), rel=1e-4, abs=1e-9
        )
        assert logs["score_loss"].item() == pytest.approx(
            alpha**2 * inv_logs["score_loss"].item(), rel=1e-4, abs=1e-9
        )
    assert max(drawn) - min(drawn) > 0.5
    # each step: the base at α = 0 without gradients, then the drawn α with them
    assert model.alphas[0::2] == [0.0] * 12 and model.grad_on[0::2] == [False] * 12
    assert model.grad_on[1::2] == [True] * 12


def test_linear_path_at_alpha_one_is_the_invariance_loss():
    torch.manual_seed(1)
    img, txt = torch.randn(4, 5), torch.randn(2, 5)
    batch = {"set_index": torch.tensor([0, 0, 1, 1])}
    model = _RecordingAlphaClip(img, txt)
    end = CFAlphaLoss(alpha_range=(1.0, 1.0), alpha_path_target="linear")
    loss, _ = end(model, batch)
    expected, _ = CFAlphaLoss()(FakeClip(img, txt), batch)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert model.alphas == [1.0]  # no base forward when nothing of it is kept


def test_linear_path_needs_the_alpha_path_and_the_cohesion_loss():
    with pytest.raises(TrustVLInputError, match="alpha_range"):
        CFAlphaLoss(alpha_path_target="linear")
    with pytest.raises(TrustVLInputError, match="cf_loss"):
        CFAlphaLoss(alpha_path_target="linear", alpha_range=(0, 1), cf_loss="info_nce")
    with pytest.raises(TrustVLInputError, match="alpha_path_target='curved'"):
        CFAlphaLoss(alpha_path_target="curved", alpha_range=(0, 1))
    config = CFAlphaConfig(dataset="d", output_dir="o", alpha_range=[0.0, 1.0], alpha_path_target="linear")
    assert CFAlphaLoss.from_config(config).alpha_path_target == "linear"


def test_linear_path_keep_power_keeps_one_minus_alpha_to_the_q_of_the_base_offsets():
    torch.manual_seed(2)
    img, txt = torch.randn(6, 5), torch.randn(3, 5)
    batch = {"set_index": torch.tensor([0, 0, 1, 1, 2, 2])}
    _, inv_logs = CFAlphaLoss(beta_clip=0.0, beta_cf=1.0, beta_score=1.0)(FakeClip(img, txt), batch)
    common = dict(
        beta_clip=0.0, beta_cf=1.0, beta_score=1.0, alpha_range=(0.0, 1.0), alpha_path_target="linear"
    )
    cubed = CFAlphaLoss(**common, alpha_path_keep_power=3.0, seed=5)
    model = _RecordingAlphaClip(img, txt)
    for step in range(8):
        cubed.set_step(step)
        _, logs = cubed(model, batch)
        alpha = model.alphas[-1]
        # the model's offsets are the base's: what is left after keeping (1 − α)³ of them is 1 − (1 − α)³
        left = (1.0 - (1.0 - alpha) ** 3) ** 2
        assert logs["cf_loss"].item() == pytest.approx(left * inv_logs["cf_loss"].item(), rel=1e-4, abs=1e-9)
        assert logs["score_loss"].item() == pytest.approx(
            left * inv_logs["score_loss"].item(), rel=1e-4, abs=1e-9
        )
    # q = 1 is the linear path
    assert CFAlphaLoss(**common).alpha_path_keep_power == 1.0
    with pytest.raises(TrustVLInputError, match="alpha_path_keep_power"):
        CFAlphaLoss(**common, alpha_path_keep_power=0.0)
    with pytest.raises(TrustVLInputError, match="needs alpha_path_target='linear'"):
        CFAlphaLoss(alpha_range=(0.0, 1.0), alpha_path_keep_power=2.0)
    config = CFAlphaConfig(
        dataset="d",
        output_dir="o",
        alpha_range=[0.0, 1.0],
        alpha_path_target="linear",
        alpha_path_keep_power=2.0,
    )
    assert CFAlphaLoss.from_config(config).alpha_path_keep_power == 2.0


def test_positives_out_averages_each_positives_log_likelihood():
    from trustvl.training.losses import multi_positive_info_nce

    g = torch.Generator().manual_seed(0)
    txt, img = torch.randn(2, 5, generator=g), torch.randn(6, 5, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    logits = 20.0 * torch.nn.functional.normalize(txt, dim=-1) @ torch.nn.functional.normalize(img, dim=-1).T
    log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    expected = -(log_p * mask).sum(1).div(3).mean()
    got = multi_positive_info_nce(txt, img, mask, 20.0, positives="out")
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    # with one positive per row the two forms are the same loss
    one = torch.eye(2, 6, dtype=torch.bool)
    same = multi_positive_info_nce(txt, img, one, 20.0, positives="in")
    assert multi_positive_info_nce(txt, img, one, 20.0, positives="out").item() == pytest.approx(same.item())
    with pytest.raises(TrustVLInputError, match="positives='both'"):
        multi_positive_info_nce(txt, img, mask, 20.0, positives="both")


def test_clip_positives_out_pulls_the_weaker_variant_hardest():
    """A caption with two variants, one matching it better (more of its context visible). In the default
    form its caption→image term weights each variant by its share of the caption's match, so the better one
    keeps much of the pull; 'out' pulls both equally there, and the weaker one gains the most."""
    txt = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    batch = {"set_index": torch.tensor([0, 0, 1, 1])}

    def gap_gradient(form: str) -> float:
        img = torch.tensor(
            [[1.0, 0.3, 0.2], [1.0, 0.6, 0.2], [0.0, 1.0, 0.3], [0.3, 1.0, 0.0]], requires_grad=True
        )
        loss, _ = CFAlphaLoss(beta_clip=1.0, beta_cf=0.0, beta_score=0.0, clip_positives=form)(
            FakeClip(img, txt), batch
        )
        loss.backward()
        # descent moves the score of variant j against caption 0 by -grad·txt[0] (up to normalisation)
        step = -img.grad[:2] @ txt[0]
        return float(step[0] - step[1])  # > 0: the better-matching variant 0 gains more

    assert gap_gradient("out") < 0.0  # the weaker variant catches up
    assert gap_gradient("in") > gap_gradient("out") + 0.05
    with pytest.raises(TrustVLInputError, match="clip_positives"):
        CFAlphaLoss(clip_positives="sum")


def test_effect_path_target_asks_for_the_kept_share_of_the_base_effect():
    logits = torch.tensor([[1.5], [0.5], [3.5], [2.5]])
    sets = torch.tensor([0, 0, 1, 1])
    attributes = torch.tensor([[1], [0], [1], [0]])
    floor = _EFFECT_EPS**0.5
    # the base has the same +-0.5 effect: keeping all of it costs only the floor, keeping half of it 0.25
    assert attribute_effect_loss(logits, sets, attributes, logits, keep=1.0).item() == pytest.approx(floor)
    half = attribute_effect_loss(logits, sets, attributes, logits, keep=0.5).item()
    assert half == pytest.approx((0.25**2 + _EFFECT_EPS) ** 0.5, rel=1e-6)
    # keep = 0 (α = 1) is the zero target whatever the base does
    assert attribute_effect_loss(logits, sets, attributes, 2 * logits, keep=0.0).item() == pytest.approx(
        attribute_effect_loss(logits, sets, attributes).item()
    )
    with pytest.raises(TrustVLInputError, match="effect_path_target"):
        CFAlphaLoss(beta_effect=1.0, effect_path_target=True)
    CFAlphaLoss(beta_effect=1.0, effect_path_target=True, alpha_range=(0.0, 1.0), alpha_path_target="linear")


def test_running_effects_weight_every_batch_and_keep_missing_levels():
    from trustvl.training.cf_alpha.loss import RunningEffects

    running = RunningEffects(0.5)
    first = running.update(0, [0, 1], torch.tensor([[2.0], [-2.0]]))
    # normalised by the weight gathered so far: the first batch is its own mean, not half of it
    assert first.tolist() == [[2.0], [-2.0]]
    # weights 0.5·0.5 (first) and 0.5 (second) over their sum 0.75
    second = running.update(0, [0], torch.tensor([[-1.0]]))
    assert second.item() == pytest.approx((0.25 * 2.0 + 0.5 * -1.0) / 0.75)
    # level 1 was absent: its mean is kept, and another attribute has its own means
    assert running.update(0, [1], torch.tensor([[-2.0]])).item() == pytest.approx(-2.0)
    assert running.update(1, [0], torch.tensor([[5.0]])).item() == pytest.approx(5.0)


def test_effect_momentum_steers_by_the_running_effect_not_the_batch_noise():
    """Levels 0/1 of one attribute: the stream's true effect is +0.1 (level 1 above level 0), but this batch
    shows −0.3 by chance. Without momentum the step follows the batch (pushes level 1 up); with it, it follows
    the running mean (pushes level 1 down); the value is the running estimate's."""
    from trustvl.training.cf_alpha.loss import RunningEffects

    sets = torch.tensor([0, 0, 1, 1])
    attributes = torch.tensor([[1], [0], [1], [0]])

    def batch(effect: float) -> torch.Tensor:
        return torch.tensor([[effect / 2], [-effect / 2], [1 + effect / 2], [1 - effect / 2]])

    running = RunningEffects(0.9)
    for _ in range(30):
        attribute_effect_loss(batch(0.1), sets, attributes, running=running)

    def push_on_level_1(running_effects):
        logits = batch(-0.3).requires_grad_(True)
        loss = attribute_effect_loss(logits, sets, attributes, running=running_effects)
        loss.backward()
        return loss.item(), float(-(logits.grad[attributes[:, 0] == 1].sum()))

    plain_value, plain_push = push_on_level_1(None)
    value, push = push_on_level_1(running)
    assert plain_push > 0  # follows the batch: −0.3 → raise level 1
    assert push < 0  # follows the stream: +0.1 on average → lower level 1
    # the value is the running estimate (0.9 of +0.05-ish, 0.1 of the batch's −0.15 per level) not the batch's
    assert value < plain_value
    with pytest.raises(TrustVLInputError, match="effect_momentum"):
        CFAlphaLoss(beta_effect=1.0, effect_momentum=0.9)  # needs effect_own_caption
    with pytest.raises(TrustVLInputError, match="effect_momentum"):
        CFAlphaLoss(beta_effect=1.0, effect_own_caption=True, effect_momentum=1.0)
    loss = CFAlphaLoss.from_config(
        CFAlphaConfig(
            dataset="d",
            output_dir="o",
            beta_effect=1.0,
            effect_own_caption=True,
            effect_momentum=0.9,
            effect_attributes=["age"],
        )
    )
    assert isinstance(loss._running, RunningEffects) and loss._running.momentum == 0.9
