"""Exceptions raised by trustvl.

Every error caused by bad input is a :class:`TrustVLInputError`, a subclass of :class:`ValueError`,
whose message names the offending value and what was expected. The CLI turns these into a single
line on stderr and a non-zero exit code, never a traceback.
"""


class TrustVLError(Exception):
    """Base class of trustvl's own errors."""


class TrustVLInputError(TrustVLError, ValueError):
    """Bad input: the message names the value and what was expected."""
