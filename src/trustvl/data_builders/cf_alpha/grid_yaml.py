"""Reading counterfactual grid YAML files (:func:`resolve_grid_yaml`) and the packaged default grid.

:meth:`~trustvl.data_builders.cf_alpha.config.CounterfactualConfig.from_yaml` reads a file with the config's
field names as keys (unknown keys are an error). ``extends: default`` (or a path) first loads that base
file, then merges this one into it: mappings key by key (so an occupation or an attribute value can be
added or overridden), lists and scalars replaced. The packaged default is
``trustvl/assets/counterfactual/default_grid.yaml`` (:data:`DEFAULT_GRID_PATH`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from trustvl.errors import TrustVLInputError
from trustvl.utils.assets import asset_path

__all__ = ["DEFAULT_GRID_PATH", "default_grid_value", "resolve_grid_yaml"]

DEFAULT_GRID_PATH = asset_path("counterfactual", "default_grid.yaml")


@lru_cache(maxsize=8)
def _read_yaml_cached(path: str, mtime: float) -> Any:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TrustVLInputError(f"config file {str(path)!r} does not exist; expected a YAML file")
    try:
        data = _read_yaml_cached(str(path), path.stat().st_mtime)
    except Exception as err:  # yaml.YAMLError and decoding errors
        raise TrustVLInputError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise TrustVLInputError(
            f"config file {str(path)!r} holds a {type(data).__name__}; expected a mapping of fields"
        )
    return copy.deepcopy(dict(data))


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merged key by key (recursively); anything else in ``over`` replaces ``base``."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def resolve_grid_yaml(path: Path, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of a grid YAML file, with its ``extends`` chain merged in (cycles refused)."""
    key = str(path.resolve())
    if key in _seen:
        raise TrustVLInputError(f"config file {str(path)!r} extends itself (cycle through {list(_seen)})")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise TrustVLInputError(
            f"extends={parent!r} in {str(path)!r}; expected 'default' or a path to a YAML file"
        )
    if parent == "default":
        base_path = DEFAULT_GRID_PATH
    else:
        base_path = Path(parent).expanduser()
        if not base_path.is_absolute():
            base_path = path.parent / base_path
    return _merge(resolve_grid_yaml(base_path, (*_seen, key)), data)


@lru_cache(maxsize=1)
def _default_data() -> dict[str, Any]:
    return resolve_grid_yaml(DEFAULT_GRID_PATH)


def default_grid_value(name: str) -> Any:
    """A fresh copy of field ``name`` of the packaged default grid."""
    return copy.deepcopy(_default_data()[name])
