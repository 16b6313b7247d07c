"""What a user can fix, as opposed to a bug.

Every error the user can fix (a mistyped suite name, a bad override, an output
directory that cannot be written, a dataset that is not prepared) is a
`UserError`: its message is one sentence that names what was wrong and what is
accepted, and the CLI prints it alone and exits with status 2, before any
training starts where that can be known. Anything else is a bug in gradzoo: the
CLI keeps its traceback, says so, and exits with status 1.

`UserError` subclasses `ValueError`, so library code that catches `ValueError`
around gradzoo calls keeps working.
"""

from __future__ import annotations

import contextlib


class UserError(ValueError):
    """A mistake in what the user asked for: one sentence, CLI exit status 2."""


class SuiteError(UserError):
    """A suite file that cannot be run: names the file, the group and the key."""


class RecordError(UserError):
    """A run record that cannot be read: names the file and the reason."""


class OutputError(UserError):
    """An output directory that cannot be written, or is in use by another run."""


@contextlib.contextmanager
def as_user_error(prefix: str, error_class: type[UserError] = UserError):
    """Turns a `ValueError` or `TypeError` raised inside the block into a `UserError`.

    For the boundary where user input (a suite's override, a CLI argument)
    reaches library code that raises Keras-style `ValueError`s. The message
    becomes `f"{prefix}: {original message}"`.

    Args:
        prefix: where the input came from, e.g. `"Suite 'quick', group 'mlp'"`.
        error_class: the `UserError` subclass to raise. Defaults to `UserError`.
    """
    try:
        yield
    except UserError as err:
        if str(err).startswith(prefix):
            raise
        raise error_class(f"{prefix}: {_sentence(err)}") from None
    except (ValueError, TypeError) as err:
        raise error_class(f"{prefix}: {_sentence(err)}") from None


def _sentence(err: Exception) -> str:
    text = " ".join(str(err).split())  # one line, whatever the library printed
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
