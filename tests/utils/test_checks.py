"""Shared checks and lookups in utils/: scalar and embedding checks, ClassLabel names, embedded assets,
and the one α check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustvl.errors import TrustVLInputError
from trustvl.utils.assets import ASSETS_DIR, asset_path, embedded_model_dir
from trustvl.utils.checks import check_embeddings, check_int, check_number, check_probability
from trustvl.utils.class_labels import class_label_names


def test_check_int_accepts_ints_in_range_and_names_bad_values():
    assert check_int("n", np.int64(3), 1) == 3 and type(check_int("n", np.int64(3), 1)) is int
    assert check_int("n", None, allow_none=True) is None
    for value, match in [
        (True, r"n=True is not an int; expected an int"),
        (2.0, r"n=2.0 is not an int"),
        (0, r"n=0 is out of range; expected an int >= 1"),
        (None, r"n=None is not an int; expected an int >= 1"),
    ]:
        with pytest.raises(TrustVLInputError, match=match):
            check_int("n", value, 1)
    with pytest.raises(TrustVLInputError, match=r"n=5 is outside \[1, 3\]; expected an int in \[1, 3\]"):
        check_int("n", 5, 1, 3)


def test_check_number_bounds_open_and_closed():
    assert check_number("x", "0.5", 0, 1) == 0.5
    assert check_number("x", 0, 0, 1, max_open=True) == 0.0
    with pytest.raises(TrustVLInputError, match=r"t=1.0 of concept 'hat' is outside \[0, 1\)"):
        check_number("t", 1.0, 0, 1, max_open=True, where=" of concept 'hat'")
    with pytest.raises(TrustVLInputError, match=r"x=0 is outside \(0, 1\]"):
        check_number("x", 0, 0, 1, min_open=True)
    with pytest.raises(TrustVLInputError, match=r"g=-1 is out of range; expected a number >= 0"):
        check_number("g", -1, 0)
    for bad in (float("nan"), "abc", True, [1.0]):
        with pytest.raises(TrustVLInputError, match="is not a number"):
            check_number("x", bad, 0, 1)
    assert check_probability("p", 1) == 1.0
    with pytest.raises(TrustVLInputError, match=r"p=1.5 is outside \[0, 1\]"):
        check_probability("p", 1.5)


def test_check_embeddings_takes_tensors_and_refuses_bad_shapes_and_nan():
    out = check_embeddings(torch.ones(3, 2, dtype=torch.float64), "e")
    assert out.dtype == np.float32 and out.shape == (3, 2)
    with pytest.raises(TrustVLInputError, match=r"e has shape \(3,\)"):
        check_embeddings(np.ones(3), "e")
    with pytest.raises(TrustVLInputError, match="non-finite values .* in 1 rows"):
        check_embeddings(np.array([[1.0, np.nan], [1.0, 2.0]]), "e")


def test_class_label_names_reads_a_classlabel_column_only():
    from datasets import ClassLabel, Dataset, Features, Value

    ds = Dataset.from_dict(
        {"y": [0, 1], "s": ["a", "b"]},
        features=Features({"y": ClassLabel(names=["no", "yes"]), "s": Value("string")}),
    )
    assert class_label_names(ds, "y") == ["no", "yes"]
    for column in ("s", "missing"):
        with pytest.raises(TrustVLInputError, match=f"column '{column}' .*expected a ClassLabel column"):
            class_label_names(ds, column)


def test_embedded_model_dir_finds_shipped_models_and_honours_the_override(tmp_path, monkeypatch):
    monkeypatch.delenv("TRUSTVL_DEFAULT_CLIP", raising=False)
    found = embedded_model_dir(
        "synthworld-clip", env="TRUSTVL_DEFAULT_CLIP", marker="config.json", what="w", made_by="m"
    )
    assert found == ASSETS_DIR / "models" / "synthworld-clip" and (found / "config.json").is_file()
    assert asset_path("prompts", "occupations.txt").is_file()
    monkeypatch.setenv("TRUSTVL_DEFAULT_CLIP", str(tmp_path))
    with pytest.raises(
        TrustVLInputError, match=r"default SynthWorld CLIP is not at .*set TRUSTVL_DEFAULT_CLIP"
    ):
        embedded_model_dir(
            "synthworld-clip",
            env="TRUSTVL_DEFAULT_CLIP",
            marker="config.json",
            what="SynthWorld CLIP",
            made_by="m",
        )
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    assert (
        embedded_model_dir("x", env="TRUSTVL_DEFAULT_CLIP", marker="config.json", what="w", made_by="m")
        == tmp_path
    )


def test_one_alpha_check_with_each_callers_hint():
    from trustvl.modeling.alpha import validate_alpha
    from trustvl.modeling.cf_alpha import CFAlphaInputError
    from trustvl.modeling.cf_alpha import validate_alpha as config_validate_alpha

    assert validate_alpha(0.25) == config_validate_alpha(0.25) == 0.25
    assert validate_alpha(1.5, allow_extrapolation=True) == 1.5
    with pytest.raises(CFAlphaInputError, match="pass allow_extrapolation=True"):
        validate_alpha(1.5)
    with pytest.raises(TrustVLInputError, match="set allow_alpha_extrapolation=True in the config"):
        config_validate_alpha(1.5)
    with pytest.raises(TrustVLInputError, match="got the bool True"):
        validate_alpha(True)
