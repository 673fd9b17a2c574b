"""Safe-CLIP quadruplet builder: schema and load_dataset, exact SynthWorld pairs, balance, resume after a
kill, the unsafe-generation flag, and bad input (missing part, empty caption, no element named)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datasets import load_dataset

from trustvl.data_builders.safe_clip import (
    QUADRUPLET_COLUMNS,
    DiffusersQuadrupletStage,
    QuadrupletConfig,
    SynthWorldRendererStage,
    build_safe_clip_quadruplets,
    load_quadruplets,
    scene_with_element,
    unsafe_element_named,
)
from trustvl.data_builders.synthworld import SceneSpec, render_spec
from trustvl.data_builders.synthworld.captions import UNSAFE_CATEGORIES
from trustvl.errors import TrustVLInputError


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny diffusion calls run ~100x slower when torch's threads compete with other processes on a small
    shared machine; one thread keeps them well under a second."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = dict(n_train=8, n_validation=4, n_test=4, resolution=32, shard_size=4, batch_size=2)


def _shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "data").glob("*.parquet"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("quads") / "q"
    summary = build_safe_clip_quadruplets(out, QuadrupletConfig(**TINY), progress=False)
    return out, summary


def test_dataset_loads_with_schema_and_exact_pairs(built):
    out, summary = built
    for split, n in (("train", 8), ("validation", 4), ("test", 4)):
        ds = load_dataset(str(out), split=split)
        assert ds.column_names == list(QUADRUPLET_COLUMNS) and len(ds) == n == summary.rows[split]
    ds = load_quadruplets(out, "train")
    assert {f: type(ds.features[f]).__name__ for f in ("safe_image", "unsafe_image")} == {
        "safe_image": "Image",
        "unsafe_image": "Image",
    }
    cfg = QuadrupletConfig(**TINY)
    from trustvl.data_builders.synthworld import SynthWorldRenderer

    renderer = SynthWorldRenderer(cfg.world_config(), seed=cfg.world_seed())
    for row in ds:
        v, g = np.asarray(row["safe_image"]), np.asarray(row["unsafe_image"])
        kind = row["unsafe_kind"]
        # U names G's element, and only it; S names none; the category is the element's
        assert unsafe_element_named(row["unsafe_text"]) == kind
        assert unsafe_element_named(row["safe_text"]) is None
        assert row["unsafe_text"].startswith(row["safe_text"]) and row["category"] == UNSAFE_CATEGORIES[kind]
        # V and G differ, and only where the element is drawn: its box (grown by one pixel, as SynthWorld's
        # syringe box misses the needle's last pixel)
        spec = renderer.sample_scene("test", row["scene_id"])
        unsafe = render_spec(scene_with_element(renderer, spec, kind))
        assert np.array_equal(unsafe.image, g) and np.array_equal(render_spec(spec).image, v)
        x0, y0, x1, y1 = unsafe.boxes["unsafe"]
        changed = (v != g).any(-1)
        assert changed.sum() >= 10
        outside = changed.copy()
        outside[max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1] = False
        assert not outside.any()
        assert row["occupation"] == spec.occupation


def test_balanced_over_elements_and_deterministic(built, tmp_path):
    out, summary = built
    assert summary.elements["train"] == {"gun": 2, "knife": 2, "blood": 2, "syringe": 2}
    assert summary.n_dropped_no_element == 0
    again = tmp_path / "again"
    build_safe_clip_quadruplets(again, QuadrupletConfig(**TINY), progress=False)
    assert _shard_bytes(again) == _shard_bytes(out)
    other = QuadrupletConfig(**{**TINY, "seed": 1})
    assert [other.element("train", r) for r in range(8)] != [
        QuadrupletConfig(**TINY).element("train", r) for r in range(8)
    ]


class _Killed(RuntimeError):
    pass


class _KillAfter:
    """The renderer stage, killed on its (n+1)-th call."""

    abstract_unsafe = True

    def __init__(self, n):
        self.stage, self.n = SynthWorldRendererStage(), n

    def describe(self):
        return {"class": "kill-test stage"}

    def __call__(self, *args):
        if self.n <= 0:
            raise _Killed("simulated kill")
        self.n -= 1
        return self.stage(*args)


def test_killed_build_resumes_without_gap_or_duplicate(tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "resumed"
    build_safe_clip_quadruplets(ref, QuadrupletConfig(**TINY), _KillAfter(10**6), progress=False)
    with pytest.raises(_Killed):  # 2 calls per 4-row shard: the kill comes inside the 3rd shard
        build_safe_clip_quadruplets(out, QuadrupletConfig(**TINY), _KillAfter(5), progress=False)
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    with pytest.raises(TrustVLInputError, match="unfinished"):
        load_quadruplets(out, "train")
    summary = build_safe_clip_quadruplets(out, QuadrupletConfig(**TINY), _KillAfter(10**6), progress=False)
    assert summary.n_shards_reused == 2 and summary.n_shards_built == 2
    assert _shard_bytes(out) == _shard_bytes(ref)
    ids = load_quadruplets(out, "train")["scene_id"]
    assert ids == list(range(8))
    # another config in the same folder is refused
    with pytest.raises(TrustVLInputError, match="another config"):
        build_safe_clip_quadruplets(out, QuadrupletConfig(**{**TINY, "seed": 3}), progress=False)


def test_converter_output_without_element_is_dropped_and_counted(tmp_path):
    def converter(captions, seed=0):  # names an element on every other row only
        return [c + (", with a handgun" if k % 2 == 0 else ", at night") for k, c in enumerate(captions)]

    summary = build_safe_clip_quadruplets(
        tmp_path / "q", QuadrupletConfig(**TINY), converter=converter, progress=False
    )
    assert summary.n_dropped_no_element == 8 and summary.rows == {"train": 4, "validation": 2, "test": 2}
    assert len(summary.dropped) == 8 and "train:1" in summary.dropped
    ds = load_quadruplets(tmp_path / "q", "train")
    assert set(ds["unsafe_kind"]) == {"gun"}  # G follows the element U names
    assert "dropped" in (tmp_path / "q" / "README.md").read_text()


def test_bad_input_is_refused_with_one_clear_error(tmp_path):
    cfg = QuadrupletConfig(**TINY)
    with pytest.raises(TrustVLInputError, match="empty unsafe caption"):
        build_safe_clip_quadruplets(
            tmp_path / "a", cfg, converter=lambda c, seed=0: [""] * len(c), progress=False
        )
    assert not (tmp_path / "a" / "README.md").exists() and not list((tmp_path / "a" / "data").iterdir())

    class MissingG(SynthWorldRendererStage):
        def __call__(self, s, u, m):
            v, g = super().__call__(s, u, m)
            return v, [None] * len(g)

    with pytest.raises(TrustVLInputError, match=r"lacks its unsafe \(G\) image"):
        build_safe_clip_quadruplets(tmp_path / "b", cfg, MissingG(), progress=False)
    with pytest.raises(TrustVLInputError, match="elements"):
        QuadrupletConfig(elements=("gun", "bomb"))
    with pytest.raises(TrustVLInputError, match="n_train"):
        QuadrupletConfig(n_train=0)


def test_loader_refuses_missing_column_and_missing_part(built, tmp_path):
    out, _ = built
    import pyarrow.parquet as pq

    for case in ("column", "null"):
        folder = tmp_path / case
        (folder / "data").mkdir(parents=True)
        table = pq.read_table(next((out / "data").glob("train-*.parquet")))
        if case == "column":
            table = table.drop(["unsafe_text"])
        else:
            import pyarrow as pa

            texts = table.column("unsafe_text").to_pylist()
            texts[0] = None
            table = table.set_column(
                table.schema.get_field_index("unsafe_text"), "unsafe_text", pa.array(texts)
            )
        pq.write_table(table, folder / "data" / "train-00000-of-00001.parquet")
        with pytest.raises(TrustVLInputError, match="lack"):
            load_quadruplets(folder, "train")


def test_unsafe_generation_needs_the_flag(tmp_path):
    from trustvl.testing import build_tiny_sd_pipeline

    sd = build_tiny_sd_pipeline(tmp_path / "sd")
    with pytest.raises(TrustVLInputError, match="allow-unsafe-generation"):
        DiffusersQuadrupletStage(str(sd))

    class RealModelStage:  # a user stage that does not declare abstract elements
        def __call__(self, s, u, m):
            raise AssertionError("must not run")

    with pytest.raises(TrustVLInputError, match="allow-unsafe-generation"):
        build_safe_clip_quadruplets(
            tmp_path / "q", QuadrupletConfig(**TINY), RealModelStage(), progress=False
        )
    assert not (tmp_path / "q").exists()  # refused before anything was written

    # with the flag: the real-model stage generates (one row here), and the builder accepts such a stage
    stage = DiffusersQuadrupletStage(
        str(sd),
        allow_unsafe_generation=True,
        device="cpu",
        dtype=None,
        num_inference_steps=1,
        height=32,
        width=32,
    )
    v, g = stage(["a photo of a chef"], ["a photo of a chef, next to a knife"], [{"seed": 1}])
    assert v[0].size == g[0].size == (32, 32) and not np.array_equal(np.asarray(v[0]), np.asarray(g[0]))

    class RealButCheap(SynthWorldRendererStage):
        abstract_unsafe = False

    summary = build_safe_clip_quadruplets(
        tmp_path / "q", QuadrupletConfig(**TINY), RealButCheap(), allow_unsafe_generation=True, progress=False
    )
    assert summary.rows["train"] == 8 and len(load_quadruplets(tmp_path / "q", "train")) == 8


def test_cli_builds_and_refuses_real_model_without_flag(tmp_path, capsys):
    from trustvl.cli import main

    out = tmp_path / "cli"
    args = [
        "build",
        "safe-clip-quadruplets",
        "--out",
        str(out),
        "--n-train",
        "4",
        "--n-validation",
        "2",
        "--n-test",
        "2",
        "--resolution",
        "32",
        "--quiet",
    ]
    assert main(args) == 0
    assert len(load_quadruplets(out, "validation")) == 2
    code = main(
        [
            "build",
            "safe-clip-quadruplets",
            "--out",
            str(tmp_path / "x"),
            "--image-stage",
            "diffusers",
            "--model",
            str(tmp_path / "no-model"),
        ]
    )
    assert code == 2 and "allow-unsafe-generation" in capsys.readouterr().err


def test_scene_with_element_draws_the_requested_element():
    from trustvl.data_builders.synthworld import SynthWorldRenderer, unsafe_subtype

    r = SynthWorldRenderer()
    spec = r.sample_scene("test", 3)
    for element in ("gun", "knife", "blood", "syringe"):
        with_el = scene_with_element(r, spec, element)
        assert unsafe_subtype(with_el.unsafe) == element
        assert SceneSpec.from_json(with_el.to_json()) == with_el
    with pytest.raises(TrustVLInputError, match="bomb"):
        scene_with_element(r, spec, "bomb")


def test_synthworld_sd_stage_takes_synthworld_sd_folders_only(tmp_path):
    from trustvl.data_builders.safe_clip import SynthWorldSDStage

    with pytest.raises(TrustVLInputError, match="not a SynthWorld SD folder"):
        SynthWorldSDStage(tmp_path)
    assert SynthWorldSDStage.abstract_unsafe is True and DiffusersQuadrupletStage.abstract_unsafe is False


def test_worker_processes_write_the_same_bytes(tmp_path, built):
    ref, ref_summary = built  # the default num_proc: every usable core
    one = build_safe_clip_quadruplets(tmp_path / "one", QuadrupletConfig(**TINY), progress=False, num_proc=1)
    two = build_safe_clip_quadruplets(tmp_path / "two", QuadrupletConfig(**TINY), progress=False, num_proc=2)
    assert _shard_bytes(tmp_path / "one") == _shard_bytes(tmp_path / "two") == _shard_bytes(ref)
    assert len(_shard_bytes(ref)) == 4 and one.rows == two.rows == ref_summary.rows
    with pytest.raises(TrustVLInputError, match="num_proc=0"):
        build_safe_clip_quadruplets(tmp_path / "bad", QuadrupletConfig(**TINY), progress=False, num_proc=0)
