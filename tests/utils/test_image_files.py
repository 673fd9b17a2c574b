"""Images handed to the Spaces as files written once (trustvl.utils.image_files)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from trustvl.utils.image_files import image_file


def test_same_image_same_file_never_rewritten(tmp_path):
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    first = image_file(red, tmp_path)
    stat = os.stat(first)
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))  # make a rewrite visible
    before = os.stat(first)
    again = image_file(red.copy(), tmp_path)
    assert again == first
    after = os.stat(first)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert Image.open(first).convert("RGB").getpixel((3, 3)) == (255, 0, 0)
    blue = image_file(Image.new("RGB", (8, 8), (0, 0, 255)), tmp_path)
    other_size = image_file(Image.new("RGB", (4, 16), (255, 0, 0)), tmp_path)
    assert len({first, blue, other_size}) == 3
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    array = np.zeros((8, 8, 3), dtype=np.uint8)
    array[..., 0] = 255
    assert image_file(array, tmp_path) == first  # an array is the same image as its PIL form


def test_default_folder_is_one_per_process():
    a = image_file(Image.new("L", (2, 2), 7))
    b = image_file(Image.new("L", (2, 2), 9))
    assert os.path.dirname(a) == os.path.dirname(b) and os.path.isfile(a) and os.path.isfile(b)
