"""print_json: a benchmark's result printed and written atomically, numpy values included."""

from __future__ import annotations

import json

import numpy as np

from trustvl.utils.io import print_json


def test_print_json_prints_and_writes_the_same_text(tmp_path, capsys):
    result = {"rate": np.float32(0.25), "counts": np.arange(3), "name": "x"}
    out = tmp_path / "deep" / "result.json"
    text = print_json(result, out)
    assert capsys.readouterr().out == text + "\n"
    assert out.read_text(encoding="utf-8") == text + "\n"
    assert json.loads(text) == {"rate": 0.25, "counts": [0, 1, 2], "name": "x"}
    assert not list(out.parent.glob(".*"))  # nothing half-written left next to it
    assert print_json({"a": 1}) == '{\n "a": 1\n}'  # no path: printed only
