"""The exceptions that mean "the input is wrong", as opposed to a bug.

Every check of a user-supplied value, file or setting raises :class:`InputError` (a ``ValueError``) or
:class:`InputTypeError` (an ``InputError`` and a ``TypeError``), with a message that names the parameter
(or the file and key), the allowed range and the value received.  Code written against ``ValueError`` and
``TypeError`` keeps working; the command line reports these as one line on stderr with exit code 2, and
lets every other exception keep its traceback, since that is a bug to report.
"""

from __future__ import annotations

__all__ = ["InputError", "InputTypeError"]


class InputError(ValueError):
    """A bad value, setting, file or data set supplied by the user."""


class InputTypeError(InputError, TypeError):
    """A user-supplied value of the wrong type."""
