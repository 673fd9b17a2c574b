"""How ``adapter/`` was made: standard fine-tuning (L_CLIP only, LoRA r = 8 on both towers) of the embedded
SynthWorld CLIP on a spurious-digits train split (digits 1, 3, 7; a red rectangle associated with "seven" at
Cramér's V = 0.95), so that the fine-tuned model picks up the rectangle. 40 steps x 32 images, lr 1e-3, seed 0
(32 s on a shared 2-core CPU, on the SynthWorld-Web default CLIP v4). The app rebuilds the same dataset (same arguments, same seed) at start.

    python spaces/ravl/make_adapter.py --out /tmp/ravl_ft   # then copy /tmp/ravl_ft/ft/adapter here
"""

import argparse
from pathlib import Path

from trustvl.data_builders.ravl.spurious_digits import build_spurious_digits
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.training.ravl import CLIPFinetuneConfig, finetune_clip

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
out = Path(parser.parse_args().out)
data = build_spurious_digits(
    out / "data",
    cramers_v=0.95,
    spurious_class=7,
    classes=[1, 3, 7],
    n_train=256,
    n_test=96,
    seed=0,
    overwrite=True,
    progress=False,
)
finetune_clip(
    CLIPFinetuneConfig(
        base_model=str(default_clip_path()),
        dataset=str(data),
        output_dir=str(out / "ft"),
        use_lora=True,
        learning_rate=1e-3,
        max_steps=40,
        per_device_train_batch_size=32,
        warmup_steps=4,
        seed=0,
        disable_tqdm=True,
        save_model=True,
    )
)
