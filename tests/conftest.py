"""Shared fixtures: tiny offline models and a tiny attributed image dataset, built once per session."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """The script ``benchmarks/<name>.py`` imported as a module (benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    from trustvl.testing.tiny import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip", seed=0)


def write_attributed_parquet(folder, n=40, seed=0, split="test"):
    """A small image dataset with ClassLabel attributes, saved as a Parquet folder for load_dataset."""
    from datasets import ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    images = [PILImage.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)) for _ in range(n)]
    features = Features(
        {
            "image": Image(),
            "skin_tone": ClassLabel(names=["light", "medium", "dark"]),
            "gender": ClassLabel(names=["female", "male"]),
            "occupation": ClassLabel(names=["doctor", "chef"]),
        }
    )
    ds = Dataset.from_dict(
        {
            "image": images,
            "skin_tone": [i % 3 for i in range(n)],
            "gender": [(i // 2) % 2 for i in range(n)],
            "occupation": [(i // 3) % 2 for i in range(n)],
        },
        features=features,
    )
    (folder / "data").mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return folder


@pytest.fixture(scope="session")
def tiny_parquet_dir(tmp_path_factory):
    return write_attributed_parquet(tmp_path_factory.mktemp("data") / "attributed")


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory):
    """A tiny random Stable Diffusion pipeline saved locally (diffusers' own classes)."""
    from trustvl.testing.tiny import build_tiny_sd_pipeline

    return build_tiny_sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd", seed=0)


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: on 2 shared cores, several threads only spin against each other on tiny tensors."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FakeClipOutput:
    def __init__(self, image_embeds, text_embeds):
        self.image_embeds, self.text_embeds = image_embeds, text_embeds


class FakeClip(torch.nn.Module):
    """A CLIP stand-in for loss tests: forward returns fixed image and text embeddings, as the training core's
    loss contract requires, with a learnable logit scale."""

    def __init__(self, img, txt, scale=10.0):
        super().__init__()
        self.img, self.txt = img, txt
        self.logit_scale = torch.nn.Parameter(torch.tensor(scale).log())

    def forward(self, **_):
        return FakeClipOutput(self.img, self.txt)
