"""Exceptions that carry what a caller needs to name the culprit."""
from __future__ import annotations


class NonFiniteDataError(ValueError):
    """Feature sums came out NaN or inf: some column holds NaN/inf or overflows.

    ``columns`` are the indices of the affected feature columns. Raised by the
    moments pass, which sees every value anyway, so no separate scan of the
    data is needed on the happy path; callers turn it into a message that names
    the column, the count and the rows.
    """

    def __init__(self, columns):
        self.columns = list(columns)
        super().__init__("feature columns %s hold NaN or inf values (or overflow float64)"
                         % self.columns[:10])
