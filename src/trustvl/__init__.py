"""trustvl: fairer, safer and more robust CLIP-style vision-language models, the Hugging Face way.

Subpackages are imported lazily so that ``import trustvl`` stays cheap; importing
:mod:`trustvl.modeling` registers trustvl's model classes with the transformers Auto classes.
"""

from trustvl.errors import TrustVLError, TrustVLInputError

__version__ = "0.1.0.dev0"
__all__ = ["TrustVLError", "TrustVLInputError", "__version__"]
