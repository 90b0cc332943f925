"""Exceptions that carry what a caller needs to name the culprit.

Every error about the input is a :class:`InputError` (a ``ValueError``) whose
message names the column, the count and the file at fault. Subclasses let a
command line map each kind to its own exit code. They are raised on workers
too, so each takes just its message (they must survive pickling).
"""
from __future__ import annotations


class NonFiniteDataError(ValueError):
    """Feature sums came out NaN or inf: some column holds NaN/inf or overflows.

    ``columns`` are the indices of the affected feature columns. Raised by the
    moments pass, which sees every value anyway, so no separate scan of the
    data is needed on the happy path; callers turn it into a message that names
    the column, the count and the rows.
    """

    def __init__(self, columns):
        self.columns = [int(c) for c in columns]
        super().__init__("feature columns %s hold NaN or inf values (or overflow float64)"
                         % self.columns[:10])

    def __reduce__(self):
        return (type(self), (self.columns,))


class InputError(ValueError):
    """The input table or an option describing it is unusable."""


class MissingColumnError(InputError):
    """A label, weight, key or named feature column is not in the table."""


class ColumnTypeError(InputError):
    """A column has a type it cannot have (non-numeric label, duplicate names, ...)."""


class SchemaDriftError(InputError):
    """A column's type differs between the files of one table (or a file lacks it)."""


class UnreadableFileError(InputError):
    """A file (or path) cannot be found, listed, opened or decoded."""


class EmptyTableError(InputError):
    """The table has no rows (or none left after dropping rows with missing values)."""


class BadValuesError(InputError):
    """NaN/inf in a feature or the label, labels outside {0, 1}, negative weights, ..."""


class ConfigError(ValueError):
    """A configuration key, a flag or a config file is unknown or has a bad value."""


class ManifestError(ValueError):
    """A manifest file cannot be read, is not JSON, or does not match its JSON Schema."""


class EngineError(RuntimeError):
    """The engine could not be started or reached, or failed while running."""


class MemoryBudgetError(EngineError):
    """The table would not fit in the memory the engine has, and the settings say
    not to re-read it every pass instead (the message says what was needed)."""


class OutputWriteError(EngineError):
    """An output file or folder could not be written (full disk, read-only folder, ...);
    the message names the path."""


class OutputLockedError(EngineError):
    """Another run holds the output (its lock); the message names the holder."""


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread by the command line's handler so
    that every ``finally`` cleans up (staging folders, temporary files, the engine)
    before the process exits with 143."""


def jvm_gone_error(exc, lost=False):
    """An :class:`EngineError` saying that Spark's JVM died, for the errors py4j
    gives when the gateway is gone (a refused connection, an empty answer), in
    ``exc`` or anywhere in its chain of causes (py4j reports a reset connection
    during ``setCallSite`` as a plain "error occurred while calling" raised from
    one); None for any other error. Wherever a call into the JVM was made (a pass,
    the engine's cores, closing it), the message is the same. ``lost``: the caller
    found the gateway gone itself (:func:`~.engines.spark_engine.jvm_gone`)."""
    if not lost and not any(map(_gateway_lost, _causes(exc))):
        return None
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return EngineError("Spark's JVM (the driver's gateway) died or stopped answering "
                       "(%s: %s); the blocks this run cached on local disk are removed. Was "
                       "it killed, e.g. for memory (spark.driver.memory)? Rerun the stage"
                       % (name, text))


def _causes(exc):
    """``exc`` and the exceptions it was raised from or while handling, in order."""
    seen = []
    while exc is not None and all(exc is not e for e in seen):
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _gateway_lost(exc):
    """Whether ``exc`` itself says py4j lost its connection to the JVM."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return isinstance(exc, ConnectionError) or name == "Py4JNetworkError" or (
        name == "Py4JError" and ("Answer from Java side is empty" in text
                                 or "while sending" in text or "receiving" in text))


class NotConvergedError(RuntimeError):
    """The chosen fit missed its duality-gap tolerance and the configuration says fail."""


class DriftExceededError(RuntimeError):
    """The selection moved more than ``drift.max_churn`` from its baseline: the new
    manifest is written (with its ``drift`` section) and a scheduler should hold the
    downstream job."""
