"""Loading a CLIP-style model with its processor, and batched image/text embedding.

Works for any checkpoint that ``transformers.AutoModel`` / ``AutoProcessor`` load and that exposes
``get_image_features`` / ``get_text_features`` (``CLIPModel`` and trustvl's subclasses). In
transformers 5 these return an output object whose ``pooler_output`` is the projected embedding;
older versions returned the tensor itself — both are handled.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from trustvl.errors import TrustVLInputError
from trustvl.modeling.image_loading import (
    ImageRows,
    PixelTransform,
    Unreadable,
    collate_images,
    decode_rows,
    open_image,
    to_uint8_chw,
)
from trustvl.utils.devices import resolve_device, resolve_dtype


def load_clip(name_or_path: str | os.PathLike, device: str | torch.device = "auto", dtype: Any = None):
    """Load ``(model, processor)`` from a Hub id or local folder, in eval mode on ``device``.

    ``device`` and ``dtype`` follow :mod:`trustvl.utils.devices` (``"auto"``: this process's accelerator;
    ``dtype=None``: float32).

    trustvl's own model classes (e.g. ``CFAlphaCLIPModel``) load through ``AutoModel`` once
    :mod:`trustvl.modeling` is imported, which this function does.
    """
    from transformers import AutoModel, AutoProcessor

    import trustvl.modeling  # noqa: F401  (registers trustvl model classes with the Auto classes)
    from trustvl.hub.loading import load_pretrained

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    model = load_pretrained(AutoModel, name_or_path, kind="model")
    processor = load_pretrained(AutoProcessor, name_or_path, kind="model")
    if not hasattr(model, "get_image_features") or not hasattr(model, "get_text_features"):
        raise TrustVLInputError(
            f"model {str(name_or_path)!r} is a {type(model).__name__}; expected a CLIP-style model with"
            " get_image_features and get_text_features"
        )
    model.to(device=dev, dtype=torch_dtype).eval()
    return model, processor


def load_clip_float32(name_or_path: str | os.PathLike, model_class: Any = None) -> Any:
    """A CLIP's weights in float32 (``model_class``, default ``CLIPModel``), for training or as a frozen
    reference, whatever dtype they were stored in.

    transformers loads a checkpoint in its stored dtype; the SynthWorld-Web CLIP is stored in fp16, and
    fp16 master weights neither train well nor mix with fp32 LoRA layers on a CPU. Mixed precision is the
    trainer's business (``--bf16``), not the checkpoint's.
    """
    from transformers import CLIPModel

    from trustvl.hub.loading import load_pretrained

    return load_pretrained(model_class or CLIPModel, os.fspath(name_or_path), dtype=torch.float32)


def _features(out: Any) -> torch.Tensor:
    return out.pooler_output if hasattr(out, "pooler_output") else out


def _check_finite(emb: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.isfinite(emb).all():
        raise TrustVLInputError(
            f"the model produced non-finite {what} embeddings; expected finite values"
            " (try fp32 instead of fp16)"
        )
    return emb


_AUTOCAST = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}


def _unreadable_message(bad: Unreadable) -> str:
    return f"image {bad.row} is not a readable image ({bad.reason}); expected an image file (PNG, JPEG, ...)"


@dataclass
class ImageEmbedder:
    """trustvl's one image-embedding engine (every job that embeds images goes through it).

    A :class:`torch.utils.data.DataLoader` over :class:`~trustvl.modeling.image_loading.ImageRows`:
    ``num_workers`` worker processes decode (0: in this process, as before), ``prefetch`` batches each ahead,
    so decoding overlaps the forward; on CUDA the batches are pinned and copied with ``non_blocking``. The
    processor's resize / crop / rescale / normalise run on the device as torch ops
    (:class:`~trustvl.modeling.image_loading.PixelTransform`), then the forward, under ``autocast``
    (``"bf16"`` / ``"fp16"``) when given. Embeddings come back float32 on CPU, L2-normalised when
    ``normalize``. ``unreadable`` words the error for an undecodable image (default: names its row).
    """

    model: Any
    processor: Any
    batch_size: int = 64
    num_workers: int = 0
    autocast: str | None = None
    normalize: bool = True
    prefetch: int = 4
    unreadable: Callable[[Unreadable], str] = _unreadable_message

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise TrustVLInputError(f"batch_size={self.batch_size} must be a positive integer")
        if self.num_workers < 0:
            raise TrustVLInputError(f"num_workers={self.num_workers} must be 0 or a positive integer")
        if self.autocast is not None and self.autocast not in _AUTOCAST:
            raise TrustVLInputError(
                f"autocast={self.autocast!r}; expected None or one of {sorted(_AUTOCAST)}"
            )
        self.transform = PixelTransform.from_processor(self.processor)
        self.param = next(self.model.parameters())

    def loader(self, rows: ImageRows) -> torch.utils.data.DataLoader:
        workers = self.num_workers
        return torch.utils.data.DataLoader(
            rows,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=workers,
            collate_fn=collate_images,
            pin_memory=self.param.device.type == "cuda",
            prefetch_factor=self.prefetch if workers > 0 else None,
            persistent_workers=False,
        )

    def pixel_values(self, batch: torch.Tensor | list[Any]) -> torch.Tensor:
        """A collated batch (a ``[n, 3, H, W]`` tensor, or a list of images of several sizes) → float32
        ``pixel_values`` on the model's device."""
        dev = self.param.device
        if isinstance(batch, torch.Tensor):
            return self.transform(batch.to(dev, non_blocking=True))
        for item in batch:
            if isinstance(item, Unreadable):
                raise TrustVLInputError(self.unreadable(item))
        return torch.cat([self.transform(t.unsqueeze(0).to(dev, non_blocking=True)) for t in batch])

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Image embeddings of device-resident ``pixel_values``; float32 on the device."""
        pv = pixel_values.to(dtype=self.param.dtype)
        dev_type = self.param.device.type
        if self.autocast is not None:
            with torch.autocast(dev_type, dtype=_AUTOCAST[self.autocast]):
                emb = _features(self.model.get_image_features(pixel_values=pv))
        else:
            emb = _features(self.model.get_image_features(pixel_values=pv))
        emb = emb.float()
        return torch.nn.functional.normalize(emb, dim=-1) if self.normalize else emb

    def batches(self, rows: ImageRows) -> Iterator[torch.Tensor]:
        """The embeddings of ``rows``, one float32 CPU tensor per batch, in order."""
        for batch in self.loader(rows):
            yield self.forward(self.pixel_values(batch)).cpu()

    def stream_batches(
        self, items: Iterable[tuple[int, Any]], decode: Callable[[Any], Any] = open_image
    ) -> Iterator[torch.Tensor]:
        """The embeddings of a one-pass stream of ``(row, encoded image)`` pairs (a streamed dataset), one
        float32 CPU tensor per batch of ``batch_size`` pairs, in stream order.

        A stream cannot be dealt out to DataLoader worker processes and come back in order, so here
        ``num_workers`` threads decode (``decode``, default :func:`~trustvl.modeling.image_loading.open_image`;
        PIL releases the GIL while it decodes), each thread a whole batch, and at most ``num_workers +
        prefetch`` batches are in flight ahead of the forward (every thread busy, ``prefetch`` decoded batches
        waiting): only those batches' images are ever in host memory (0 workers: decoded in this thread, one
        batch at a time)."""
        pin = self.param.device.type == "cuda"

        def load(batch: list[tuple[int, Any]]) -> torch.Tensor | list[Any]:
            collated = decode_rows(batch, decode)
            return collated.pin_memory() if pin and isinstance(collated, torch.Tensor) else collated

        stream = iter(items)
        batches = iter(lambda: list(itertools.islice(stream, self.batch_size)), [])
        if self.num_workers == 0:
            for batch in batches:
                yield self.forward(self.pixel_values(load(batch))).cpu()
            return
        pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="trustvl-decode")
        pending: deque = deque()
        try:
            for batch in batches:
                pending.append(pool.submit(load, batch))
                if len(pending) >= self.num_workers + self.prefetch:
                    yield self.forward(self.pixel_values(pending.popleft().result())).cpu()
            while pending:
                yield self.forward(self.pixel_values(pending.popleft().result())).cpu()
        finally:  # an error (an unreadable image) or an abandoned stream: drop the batches not started
            pool.shutdown(wait=True, cancel_futures=True)

    def embed(
        self,
        images: Iterable[Any],
        *,
        total: int | None = None,
        progress: bool = True,
        desc: str = "embedding images",
    ) -> torch.Tensor:
        """Embed ``images`` (an :class:`ImageRows`, a sequence or any iterable of PIL images / arrays);
        float32 ``[n, d]`` on CPU. A one-pass iterable (a generator) is decoded in this process."""
        if isinstance(images, ImageRows):
            rows: ImageRows | None = images
        elif hasattr(images, "__len__") and hasattr(images, "__getitem__"):
            rows = ImageRows(images)
        else:
            rows = None
        outs: list[torch.Tensor] = []
        bar = tqdm(total=total if rows is None else len(rows), desc=desc, unit="img", disable=not progress)
        try:
            for emb in self.batches(rows) if rows is not None else self._one_pass(images):
                outs.append(emb)
                bar.update(len(emb))
        finally:  # an error (an unreadable image) must not leave the bar to redraw over its message
            bar.close()
        if not outs:
            raise TrustVLInputError("no images to embed; expected at least one image")
        return _check_finite(torch.cat(outs), "image")

    def _one_pass(self, images: Iterable[Any]) -> Iterator[torch.Tensor]:
        batch: list[Any] = []
        for img in images:
            batch.append(to_uint8_chw(open_image(img)))  # encoded values too, as ImageRows decodes them
            if len(batch) == self.batch_size:
                yield self.forward(self.pixel_values(collate_images(batch))).cpu()
                batch = []
        if batch:
            yield self.forward(self.pixel_values(collate_images(batch))).cpu()


def embed_images(
    model,
    processor,
    images: Iterable[Any],
    *,
    batch_size: int = 64,
    total: int | None = None,
    normalize: bool = True,
    progress: bool = True,
    desc: str = "embedding images",
    num_workers: int = 0,
    autocast: str | None = None,
) -> torch.Tensor:
    """Embed images (PIL or arrays) with :class:`ImageEmbedder`; returns float32 ``[n, d]`` on CPU."""
    engine = ImageEmbedder(
        model,
        processor,
        batch_size=batch_size,
        num_workers=num_workers,
        autocast=autocast,
        normalize=normalize,
    )
    return engine.embed(images, total=total, progress=progress, desc=desc)


@torch.no_grad()
def embed_texts(
    model, processor, texts: Sequence[str], *, batch_size: int = 256, normalize: bool = True
) -> torch.Tensor:
    """Embed prompts; returns float32 ``[n, d]`` on CPU."""
    if len(texts) == 0:
        raise TrustVLInputError("no prompts given; expected at least one text prompt")
    param = next(model.parameters())
    tokenizer = getattr(processor, "tokenizer", processor)
    outs = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i : i + batch_size]), padding=True, truncation=True, return_tensors="pt")
        enc = {k: v.to(param.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        emb = _features(model.get_text_features(**enc)).float()
        if normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        outs.append(emb.cpu())
    return _check_finite(torch.cat(outs), "text")


@torch.no_grad()
def embed_pixel_values(
    model,
    pixel_values: torch.Tensor,
    *,
    batch_size: int = 256,
    normalize: bool = True,
    progress: bool = False,
    desc: str = "embedding images",
) -> torch.Tensor:
    """Embed already-preprocessed ``pixel_values`` ``[n, 3, H, W]``; returns float32 ``[n, d]`` on CPU."""
    return _embed_tensor_batches(
        model,
        pixel_values,
        lambda pv: _features(model.get_image_features(pixel_values=pv)),
        batch_size=batch_size,
        normalize=normalize,
        progress=progress,
        desc=desc,
    )


def _embed_tensor_batches(
    model, inputs: torch.Tensor, forward, *, batch_size: int, normalize: bool, progress: bool, desc: str
) -> torch.Tensor:
    """``forward`` over ``inputs`` in batches moved to the model's device and dtype; float32 on CPU."""
    param = next(model.parameters())
    outs = []
    for i in tqdm(range(0, len(inputs), batch_size), desc=desc, disable=not progress):
        emb = forward(inputs[i : i + batch_size].to(device=param.device, dtype=param.dtype)).float()
        if normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        outs.append(emb.cpu())
    if not outs:
        raise TrustVLInputError("no images to embed; expected at least one image")
    return _check_finite(torch.cat(outs), "image")


@torch.no_grad()
def vision_prefix_states(
    model,
    processor,
    images: Sequence[Any],
    n_layers: int,
    *,
    batch_size: int = 128,
    progress: bool = False,
    desc: str = "frozen vision layers",
) -> torch.Tensor:
    """Hidden states entering vision layer ``n_layers`` of a model with ``vision_hidden_states`` (the CF_α
    CLIP), for ``images``; ``[n, tokens, width]`` on CPU in the model's dtype."""
    engine = ImageEmbedder(model, processor, batch_size=batch_size)  # its decoding and torch preprocessing
    outs = []
    for batch in tqdm(engine.loader(ImageRows(images)), desc=desc, disable=not progress):
        pv = engine.pixel_values(batch).to(dtype=engine.param.dtype)
        outs.append(model.vision_hidden_states(pv, n_layers).cpu())
    if not outs:
        raise TrustVLInputError("no images to embed; expected at least one image")
    return torch.cat(outs)


@torch.no_grad()
def embed_vision_states(
    model,
    states: torch.Tensor,
    start_layer: int,
    *,
    batch_size: int = 256,
    normalize: bool = True,
    progress: bool = False,
    desc: str = "embedding images",
) -> torch.Tensor:
    """Image embeddings from :func:`vision_prefix_states` output (the layers from ``start_layer`` on, the
    post-LayerNorm and the projection); float32 ``[n, d]`` on CPU."""
    return _embed_tensor_batches(
        model,
        states,
        lambda chunk: model.image_features_from_hidden_states(chunk, start_layer),
        batch_size=batch_size,
        normalize=normalize,
        progress=progress,
        desc=desc,
    )
