"""trustvl.testing: tiny offline fixtures (random models saved with ``save_pretrained``) for tests and demos."""

# ruff: noqa: F401  (re-exports)
from trustvl.testing.tiny import (
    build_tiny_clip,
    build_tiny_fixtures,
    build_tiny_inpaint_pipeline,
    build_tiny_sd_pipeline,
)
