"""Errors that a later attempt can cure: the database or the broker briefly unavailable.

The update task retries them with a fixed exponential backoff (2, 4, 8, 16 s: no jitter, so a run can be
reproduced); everything else, above all an estimation the engine refuses or cannot complete, is stored on
the update with its message and never retried.
"""

from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,  # PostgreSQL restarted, connection lost, serialization failure, SQLite locked
    InterfaceError,  # a connection closed under the task
    BrokerOperationalError,  # kombu: the broker refused or dropped the connection
    RedisConnectionError,
    RedisTimeoutError,
)
RETRY_BACKOFF_S = 2  # the first retry waits 2 s, then 4, 8, 16
RETRY_BACKOFF_MAX_S = 16
MAX_RETRIES = 4


def retry_delays_s() -> list[int]:
    """The waits before each retry, as Celery computes them without jitter (documented, and tested)."""
    return [min(RETRY_BACKOFF_MAX_S, RETRY_BACKOFF_S * 2**retry) for retry in range(MAX_RETRIES)]


def describe(error: BaseException) -> str:
    """What a clinician may read: the kind of error only (its text can carry host names or credentials)."""
    kind = (
        "the broker" if isinstance(error, BrokerOperationalError | RedisConnectionError) else "the database"
    )
    return f"{kind} was unavailable ({type(error).__name__})"
