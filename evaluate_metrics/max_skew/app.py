"""The metric Space of this `evaluate` module: paste ranked attribute ids and a target, get the metric.

The same file serves every module folder of trustvl (max_skew, min_skew, ndkl): it loads the one module
file next to it with `evaluate.load` (so it needs neither trustvl nor network) and builds a Gradio page
with the module card. evaluate's own `evaluate.utils.launch_gradio_widget` targets the Gradio 3 API
(`gr.inputs`), which Gradio 6 no longer has, and always launches; `build_demo` builds without launching.
Inputs are bounded (`MAX_INPUT_CHARS`, `MAX_POSITIONS`) so one request stays well under a second.
"""

import inspect
import json
from pathlib import Path

import evaluate
import gradio as gr

HERE = Path(__file__).resolve().parent
MAX_INPUT_CHARS = 2_000_000
MAX_POSITIONS = 1_000_000
EXAMPLE_PREDICTIONS = "[[0, 0, 0, 1], [0, 1, 0, 1]]"
EXAMPLE_TARGET = "[0.5, 0.5]"


def module_file(folder: Path = HERE) -> Path:
    """The module script of ``folder``: its one ``.py`` file other than ``app.py`` and private helpers."""
    scripts = [p for p in sorted(folder.glob("*.py")) if p.name != "app.py" and not p.name.startswith("_")]
    if len(scripts) != 1:
        raise RuntimeError(f"{folder} holds {[p.name for p in scripts]}; expected exactly one module script")
    return scripts[0]


def card_text(folder: Path = HERE) -> str:
    """The module card (README.md) without its YAML front matter."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    if text.startswith("---"):
        text = text.split("\n---", 1)[-1].split("\n", 1)[-1]
    return text


def _parse(text: str, name: str):
    if len(text) > MAX_INPUT_CHARS:
        raise gr.Error(f"{name} is {len(text)} characters long; expected at most {MAX_INPUT_CHARS}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise gr.Error(f"{name} is not valid JSON ({exc}); expected e.g. {EXAMPLE_PREDICTIONS}") from None


def compute(metric, predictions_json: str, target_json: str, k=None) -> dict:
    """The module's result for JSON-encoded rankings and target (``k`` only for metrics that take it)."""
    predictions = _parse(predictions_json, "predictions")
    target = _parse(target_json, "target")
    if not isinstance(predictions, list) or not all(isinstance(r, list) for r in predictions):
        raise gr.Error("predictions must be a JSON list of rankings (lists of attribute ids), best first")
    positions = sum(len(r) for r in predictions)
    if positions > MAX_POSITIONS:
        raise gr.Error(f"predictions hold {positions} ranked items; expected at most {MAX_POSITIONS}")
    kwargs = {"target": target}
    if "k" in inspect.signature(metric._compute).parameters:
        if k is None or float(k) != int(k):
            raise gr.Error(f"k = {k!r}; expected a whole number >= 1")
        kwargs["k"] = int(k)
    try:
        return metric.compute(predictions=predictions, **kwargs)
    except ValueError as exc:  # bad input: the module's message names the value
        raise gr.Error(str(exc)) from None


def build_demo(metric) -> gr.Blocks:
    """The Space's page for ``metric`` (an `evaluate` module), built but not launched."""
    takes_k = "k" in inspect.signature(metric._compute).parameters
    with gr.Blocks(title=f"Metric: {metric.name}") as demo:
        gr.Markdown(f"# Metric: {metric.name}")
        with gr.Row():
            predictions = gr.Textbox(
                label="predictions: the ranked attribute ids of every query, best first (JSON list of lists)",
                value=EXAMPLE_PREDICTIONS,
                lines=4,
            )
            with gr.Column():
                target = gr.Textbox(
                    label="target distribution q (JSON list, sums to 1)", value=EXAMPLE_TARGET
                )
                k = gr.Number(label="k (cut-off)", value=4, precision=0, minimum=1, visible=takes_k)
        button = gr.Button("Compute", variant="primary")
        result = gr.JSON(label=metric.name)
        button.click(
            lambda p, t, kk: compute(metric, p, t, kk), [predictions, target, k], result, api_name="compute"
        )
        with gr.Accordion("Metric card", open=False):
            gr.Markdown(card_text())
    return demo


metric = evaluate.load(str(module_file()))
demo = build_demo(metric)

if __name__ == "__main__":
    demo.launch()
