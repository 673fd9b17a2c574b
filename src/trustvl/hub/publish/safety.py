"""What a published folder may hold: no pickles (by suffix or by their first bytes), remote code that loads
where trustvl is not installed, and ``evaluate`` modules whose imports their ``requirements.txt`` names."""

from __future__ import annotations

import ast
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError

__all__ = [
    "PICKLE_SUFFIXES",
    "check_metric_requirements",
    "check_remote_code",
    "is_pickle",
    "python_imports",
    "refuse_pickles",
    "stageable_files",
]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib")
#: formats that never hold pickles (their first bytes are not checked)
_KNOWN_SAFE_SUFFIXES = {
    ".safetensors",
    ".parquet",
    ".json",
    ".md",
    ".txt",
    ".py",
    ".yaml",
    ".yml",
    ".csv",
    ".html",
    ".css",
    ".js",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".webp",
    ".svg",
    ".model",
    ".toml",
    ".cfg",
}
_SKIPPED_DIRS = {"__pycache__", ".git", ".cache", ".ipynb_checkpoints"}
#: import names whose distribution has another name (for the metric requirements check)
_DISTRIBUTION_OF = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml", "cv2": "opencv-python"}
#: what an ``evaluate`` module may import without listing it: evaluate and what evaluate itself installs
_EVALUATE_PROVIDES = {"evaluate", "datasets", "numpy", "huggingface_hub", "pandas", "requests", "tqdm"}


def is_pickle(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return True
    if suffix in _KNOWN_SAFE_SUFFIXES:  # e.g. a safetensors header length can start with 0x80 0x05
        return False
    with open(path, "rb") as f:
        head = f.read(4)
    # pickle protocol 2+ starts with PROTO (0x80) and a protocol number; torch.save writes a zip whose
    # entries are pickles (a zip is not otherwise expected among model, dataset or Space files)
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head == b"PK\x03\x04"


def stageable_files(root: Path) -> list[Path]:
    """The files under ``root`` to stage (sorted; hidden files, caches and checkpoint folders left out)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and d not in _SKIPPED_DIRS and not d.startswith("checkpoint-")
        )
        for name in sorted(filenames):
            if not name.startswith("."):
                out.append(Path(dirpath) / name)
    return out


def refuse_pickles(root: Path, files: Iterable[Path]) -> None:
    bad = [str(p.relative_to(root)) for p in files if is_pickle(p)]
    if bad:
        raise TrustVLInputError(
            f"{str(root)!r} holds pickle-based files {bad[:5]}; trustvl publishes safetensors/Parquet only"
            " (re-save weights with safe_serialization=True and remove the pickles)"
        )


def python_imports(source: str, filename: str) -> list[tuple[str, int]]:
    """(absolute module name, relative level) of every import statement in ``source``."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise TrustVLInputError(f"{filename!r} is not valid Python: {err.msg} (line {err.lineno})") from None
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level))
    return out


def check_remote_code(model_dir: Path, config: dict[str, Any]) -> list[str]:
    """Check that the ``auto_map`` modules are in the folder and import neither trustvl nor a module that is
    not shipped; returns their file names."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    auto_map = config.get("auto_map") or {}
    model_type = config.get("model_type")
    if not auto_map:
        if model_type not in CONFIG_MAPPING_NAMES:
            raise TrustVLInputError(
                f"{str(model_dir)!r}: model_type {model_type!r} is not a transformers model and config.json has no"
                " auto_map; save the model from a class registered with register_for_auto_class so its code"
                " travels with it"
            )
        return []
    if "AutoConfig" not in auto_map or not ({"AutoModel"} & set(auto_map)):
        raise TrustVLInputError(
            f"{str(model_dir)!r}: auto_map {sorted(auto_map)} lacks AutoConfig or AutoModel; expected both so"
            " AutoModel.from_pretrained(..., trust_remote_code=True) works"
        )
    files = []
    for ref in auto_map.values():
        for item in ref if isinstance(ref, list) else [ref]:
            if item and "--" not in item:  # "repo--module.Class" points into another repo
                files.append(item.rsplit(".", 1)[0] + ".py")
    for name in sorted(set(files)):
        path = model_dir / name
        if not path.is_file():
            raise TrustVLInputError(
                f"{str(model_dir)!r}: auto_map names {name!r}, which is not in the folder"
            )
        for module, level in python_imports(path.read_text(encoding="utf-8"), str(path)):
            if level == 0 and (module == "trustvl" or module.startswith("trustvl.")):
                raise TrustVLInputError(
                    f"remote-code file {str(path)!r} imports {module!r}; it must load where trustvl is not installed"
                )
            if level > 0 and not (model_dir / (module.replace(".", "/") + ".py")).is_file():
                raise TrustVLInputError(
                    f"remote-code file {str(path)!r} imports .{module}, which is not in the folder"
                )
    return sorted(set(files))


def _requirement_names(path: Path) -> set[str]:
    names = set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(re.split(r"[\s<>=!~;\[@]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def check_metric_requirements(path: Path, files: list[Path]) -> None:
    """Every third-party import of the ``evaluate`` module files (not ``app.py``) is named in
    ``requirements.txt`` (or comes with ``evaluate`` itself), so the Space installs what the module needs."""
    if not (path / "requirements.txt").is_file():
        raise TrustVLInputError(f"metric folder {str(path)!r} has no requirements.txt")
    required = _requirement_names(path / "requirements.txt")
    local = {f.stem for f in files if f.suffix == ".py"}
    stdlib = set(sys.stdlib_module_names)
    for source in [f for f in files if f.suffix == ".py" and f.name != "app.py"]:
        for name, level in python_imports(source.read_text(encoding="utf-8"), str(source)):
            top = name.split(".")[0]
            if level or not top or top in stdlib or top in local or top in _EVALUATE_PROVIDES:
                continue
            dist = _DISTRIBUTION_OF.get(top, top).lower().replace("_", "-")
            if dist not in required:
                raise TrustVLInputError(
                    f"{str(source)!r} imports {top!r}, which requirements.txt does not name; list {dist!r} there"
                )
