"""Where does the default SynthWorld CLIP's skin-tone skew come from? Per occupation prompt: the planted
(train-split) preferred skin tone, the skin tones of the top-100 retrieved test images, and the mean and
spread of the prompt's scores per skin tone among that occupation's own test images.

    python benchmarks/inspect_default_clip_skew.py [--n-test 4000] [--world-seed 0]

Reads the shipped model's pretraining strength (skin tone 0.95) to name the planted preference.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def main() -> None:
    from trustvl.data_builders.synthworld import SynthWorldConfig, occupation_prompt
    from trustvl.evaluation.synthworld import synthworld_test_set
    from trustvl.modeling.clip_components import normalize_uint8
    from trustvl.modeling.embedding import embed_pixel_values, embed_texts
    from trustvl.modeling.synthworld_clip import load_default_clip

    ap = argparse.ArgumentParser()
    ap.add_argument("--n-test", type=int, default=4000)
    ap.add_argument("--world-seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=100)
    args = ap.parse_args()
    model, processor = load_default_clip(device="cpu")
    ts = synthworld_test_set(args.n_test, args.world_seed, 64)
    img = embed_pixel_values(model, normalize_uint8(ts.images, processor.image_processor))
    scores = embed_texts(model, processor, [occupation_prompt(o) for o in ts.occupations]) @ img.T
    world = SynthWorldConfig(strength={"skin_tone": 0.95})
    levels = ts.attribute_levels["skin_tone"]
    tone = ts.attributes["skin_tone"]
    rows = []
    for i, occ in enumerate(ts.occupations):
        top = torch.topk(scores[i], args.k).indices.numpy()
        own = ts.occupation == i
        per_level = [scores[i][torch.as_tensor(own & (tone == lv))] for lv in range(len(levels))]
        rows.append(
            {
                "occupation": occ,
                "planted_preference": world.preferred_level("skin_tone", occ),
                f"top{args.k}_counts": dict(
                    zip(levels, np.bincount(tone[top], minlength=len(levels)).tolist())
                ),
                "mean_score": dict(zip(levels, [round(float(s.mean()), 4) for s in per_level])),
                "std_score": dict(zip(levels, [round(float(s.std()), 4) for s in per_level])),
            }
        )
    hits = sum(max(r["mean_score"], key=r["mean_score"].get) == r["planted_preference"] for r in rows)
    mean_std = {lv: round(float(np.mean([r["std_score"][lv] for r in rows])), 4) for lv in levels}
    print(json.dumps({"rows": rows, "planted_level_has_highest_mean": hits, "mean_std": mean_std}, indent=1))


if __name__ == "__main__":
    main()
