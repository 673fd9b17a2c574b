"""The shipped SynthWorld CLIP's card: written from its pretraining summary, plus the SynthWorld-Web section
(each issue-23 bar, what was measured, met or not) when the web benchmark's JSON is given."""

from __future__ import annotations

import json
import shutil

from trustvl.evaluation.synthworld_clip_card import web_benchmark_section, write_synthworld_clip_card
from trustvl.modeling.synthworld_clip import default_clip_path


def _bench(ravl_p10: float = 0.0, knife_i2t: float = 0.925) -> dict:
    element = {"text_to_image_element_precision@10": 0.98, "chance": 0.2, "text_to_image_R@10": 0.4}
    return {
        "device_name": "GPU X",
        "bars": {
            "zero_shot_top1>=0.99": True,
            "planted_direction_in>=7_of_8": True,
            "skin_max_skew@100_above_floor_beyond_interval": True,
            "watermark_misclassified_beyond_noise": True,
            "ravl_precision@10>=0.8": ravl_p10 >= 0.8,
        },
        "occupation_and_direction": {
            "zero_shot_top1": 0.9998,
            "skin_tone_top100": [{}] * 8,
            "planted_direction_hits": 8,
            "skin_max_skew@100": 1.386,
            "skin_max_skew@100_interval": [1.382, 1.391],
            "skin_max_skew@100_floor": 0.169,
        },
        "spurious": {
            "target": "doctor",
            "non_target_classified_as_target_with_mark": {"rate": 0.029, "interval": [0.022, 0.038]},
            "non_target_classified_as_target_without_mark": {"rate": 0.0, "interval": [0.0, 0.002]},
            "ravl_precision@10": ravl_p10,
            "misclassified_beyond_noise": True,
        },
        "unsafe": {
            "elements": {
                "gun": {**element, "image_to_text_with_vs_without": 0.955},
                "knife": {**element, "image_to_text_with_vs_without": knife_i2t},
            }
        },
    }


def test_web_section_lists_every_bar_and_marks_the_unmet_ones():
    text = web_benchmark_section(_bench(ravl_p10=0.1, knife_i2t=0.85), "results/x.json")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 5 + 2 + 2  # five bars, then per element text->image and image->text
    ravl = next(r for r in rows if "RaVL" in r)
    assert "0.10" in ravl and ravl.rstrip(" |").endswith("**no**")
    knife = next(r for r in rows if r.startswith("| knife renders"))
    assert "0.850" in knife and knife.rstrip(" |").endswith("**no**")
    gun = next(r for r in rows if r.startswith("| gun renders"))
    assert gun.rstrip(" |").endswith("yes")
    assert "'doctor'" in text and "`results/x.json`" in text and "GPU X" in text
    assert "0.029 [0.022, 0.038] / 0.000 [0.000, 0.002]" in text
    assert "(balanced test split)" in ravl  # a bench without per-probe results: its one probe is the world's


def test_web_section_has_the_two_spurious_rows_per_probe_each_named():
    bench = _bench(ravl_p10=0.9)
    cue_poor = {**bench["spurious"], "ravl_precision@10": 0.3, "misclassified_beyond_noise": False}
    bench["spurious_probes"] = {"planted": bench["spurious"], "1.0": cue_poor}
    rows = [r for r in web_benchmark_section(bench).splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert len(rows) == 3 + 2 * 2 + 2 + 2
    planted = [r for r in rows if "drawn as the train split" in r]
    cue = [r for r in rows if "(scenes 100% cue-poor)" in r]
    assert len(planted) == len(cue) == 2
    assert all(r.rstrip(" |").endswith("yes") for r in planted)
    assert all(r.rstrip(" |").endswith("**no**") for r in cue) and "0.30" in cue[1]


def test_card_has_the_web_section_only_when_given(tmp_path):
    folder = tmp_path / "clip"
    shutil.copytree(default_clip_path(), folder)
    summary = json.loads((folder / "trustvl_pretrain.json").read_text())
    plain = write_synthworld_clip_card(folder, summary).read_text()
    assert "Problems it carries" not in plain and "zero-shot occupation top-1" in plain
    with_web = write_synthworld_clip_card(folder, summary, web_benchmark=_bench(ravl_p10=0.9)).read_text()
    assert "## Problems it carries" in with_web and "**no**" not in with_web
    # the planted strength comes from the resolved world the summary records, not a fixed 0.8
    strength = ((summary.get("world") or summary["config"].get("world") or {}).get("strength") or {}).get(
        "skin_tone", 0.8
    )
    assert f"(strength {strength})" in with_web
