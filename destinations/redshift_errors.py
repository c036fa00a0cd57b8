"""Database failures as `Redshift.*` delivery errors, by SQLSTATE where the server gave one.

Connection failures are marked retriable (they may pass); a COPY the server refused is not,
though the destination still tries it again until the retry window is over, as Firehose does.
"""

from __future__ import annotations

import psycopg

from firehose.errors import DeliveryError

# SQLSTATE (exact, or its two-character class) -> Firehose's Redshift error code.
_CODES = {
    "42P01": "Redshift.TableNotFound",
    "42703": "Redshift.ColumnNotFound",
    "3D000": "Redshift.DatabaseNotFound",
    "42601": "Redshift.SyntaxError",
    "28P01": "Redshift.AuthenticationFailed",
    "28000": "Redshift.AuthenticationFailed",
    "42501": "Redshift.InsufficientPrivilege",
    "23502": "Redshift.MissingColumn",
    "25006": "Redshift.ReadOnlyCluster",
    "53100": "Redshift.DiskFull",
    "22": "Redshift.DataLoadFailed",
    "23": "Redshift.DataLoadFailed",
    "08": "Redshift.ConnectionFailed",
    "57": "Redshift.ConnectionFailed",  # admin shutdown, cannot connect now
}


def database_error(exc: psycopg.Error, target: str) -> DeliveryError:
    """A DeliveryError for what the database (or the way to it) answered."""
    state = exc.sqlstate or ""
    code = _CODES.get(state) or _CODES.get(state[:2])
    connection = isinstance(exc, psycopg.OperationalError) and not state
    if code is None:
        code = "Redshift.ConnectionFailed" if connection else "Redshift.DataLoadFailed"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    retriable = code == "Redshift.ConnectionFailed"
    return DeliveryError(f"{code}: {message} ({target})", retriable=retriable, code=code)


def data_error(message: str, target: str) -> DeliveryError:
    """A load refused before it reached the database: staged data COPY cannot read."""
    code = "Redshift.DataLoadFailed"
    return DeliveryError(f"{code}: {message} ({target})", retriable=False, code=code)
