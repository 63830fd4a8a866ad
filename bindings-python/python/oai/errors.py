"""The exceptions oai raises: every one is an :class:`OaiError`."""

from __future__ import annotations

__all__ = [
    "OaiError",
    "IntegrityError",
    "NotFoundError",
    "InvalidInputError",
    "StoreClosedError",
    "UnavailableError",
    "ConflictError",
    "ComputeError",
]


class OaiError(Exception):
    """Base class of oai's errors."""


class IntegrityError(OaiError):
    """Bytes that do not hash to their CID, or a proof, batch or training log that does not check."""


class NotFoundError(OaiError, LookupError):
    """No block, dataset, run or file by that name or CID."""


class InvalidInputError(OaiError, ValueError):
    """A malformed spec, CID, record, argument or file."""


class StoreClosedError(OaiError):
    """The store was closed."""


class UnavailableError(OaiError, ConnectionError):
    """An IPFS node that cannot be reached or answers with an error."""


class ConflictError(OaiError):
    """A head moved under a compare-and-swap (someone else committed first)."""


class ComputeError(OaiError):
    """A log of another compute class or kernel version than this machine can judge."""
