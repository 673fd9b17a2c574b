"""Pictures and files of a RaVL discovery result.

* :func:`plot_cluster_exemplars`: a PNG grid, one row per ranked cluster (most spurious first), showing
  its top regions (highest cosine similarity to the medoid), with the cluster id, score
  ``sum |gap|`` and influence in the row title. Drawn with matplotlib's object API (no global pyplot
  state, Agg canvas), so it works headless.
* :func:`write_discovery_json`: the result as indented JSON, written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.utils.io import write_json

__all__ = ["plot_cluster_exemplars", "write_discovery_json"]


def write_discovery_json(result: Any, path: str | os.PathLike, *, max_regions: int | None = 50) -> Path:
    """Write ``result.to_dict(max_regions)`` to ``path`` (atomic) and return the path."""
    return write_json(path, result.to_dict(max_regions))


def plot_cluster_exemplars(
    result: Any,
    images: Sequence[Any],
    path: str | os.PathLike | None = None,
    *,
    regions: Sequence[Any] | None = None,
    n_clusters: int = 5,
    n_per_cluster: int = 8,
    thumb_size: int = 64,
    fill: tuple[int, int, int] = (0, 0, 0),
    dpi: int = 100,
):
    """Grid of exemplar regions per ranked cluster; returns the PIL image and saves a PNG to ``path``.

    ``regions`` defaults to ``result.regions``; when neither is set, region ``i`` is taken to be the
    whole image ``i`` (the whole-image baseline). A result without ranked clusters gives a one-panel
    picture that says so.
    """
    import io

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    from trustvl.data_builders.ravl.regions import Region, crop_region, image_width_height

    if n_clusters < 1 or n_per_cluster < 1 or thumb_size < 4:
        raise TrustVLInputError(
            f"n_clusters={n_clusters}, n_per_cluster={n_per_cluster}, thumb_size={thumb_size};"
            " expected positive counts and thumb_size >= 4"
        )
    regions = regions if regions is not None else getattr(result, "regions", None)
    clusters = list(result.clusters)[:n_clusters]
    rows, cols = max(len(clusters), 1), n_per_cluster
    inch = thumb_size / dpi
    fig = Figure(figsize=(cols * inch * 1.1 + 0.2, rows * (inch * 1.1 + 0.35) + 0.2), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.ravel():
        ax.set_axis_off()
    if not clusters:
        axes[0, 0].text(0.0, 0.5, result.message, fontsize=8, transform=axes[0, 0].transAxes)
    names = getattr(result, "class_names", None)
    for r, cl in enumerate(clusters):
        neg = int(np.argmin(cl.gap))
        worst = names[neg] if names else str(neg)
        axes[r, 0].set_title(
            f"#{r + 1} cluster {cl.cluster_id}: score {cl.score:.3f}, influence {cl.influence:.2f},"
            f" n={cl.size}, most negative gap: {worst}",
            fontsize=7,
            loc="left",
        )
        for c, ridx in enumerate(cl.region_indices[:cols]):
            ridx = int(ridx)
            if regions is not None:
                reg = regions[ridx]
            else:
                w, h = image_width_height(images[ridx])
                reg = Region(ridx, (0, 0, w, h))
            crop = crop_region(images[reg.image_index], reg, fill).resize(
                (thumb_size, thumb_size), Image.NEAREST
            )
            axes[r, c].imshow(np.asarray(crop))
    fig.subplots_adjust(left=0.01, right=0.99, top=0.97, bottom=0.01, wspace=0.05, hspace=0.45)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    picture = Image.open(buf).convert("RGB")
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        picture.save(tmp, format="PNG")
        os.replace(tmp, path)
    return picture
