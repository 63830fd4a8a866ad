"""The exceptions oai raises: every one is an :class:`OaiError`."""

from __future__ import annotations

from typing import Any, Mapping, Optional

__all__ = [
    "OaiError",
    "IntegrityError",
    "NotFoundError",
    "InvalidInputError",
    "StoreClosedError",
    "UnavailableError",
    "ConflictError",
    "ComputeError",
    "ChainRevertError",
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


class ChainRevertError(OaiError):
    """A contract call reverted: nothing changed on chain.

    ``call`` is the function called (``TrainingMarket.claimJob``), ``contract`` the contract
    whose custom error it is (``""`` for Solidity's ``Error(string)`` and ``Panic(uint256)``,
    ``None`` when the revert data decodes as nothing known), ``error`` the error's name
    (``StakeTooLow``) and ``fields`` its arguments by name (``{"sent": ..., "minimum": ...}``;
    ``{"data": bytes}`` when undecoded)."""

    def __init__(
        self,
        message: str,
        *,
        call: Optional[str] = None,
        contract: Optional[str] = None,
        error: Optional[str] = None,
        fields: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.call = call
        self.contract = contract
        self.error = error
        self.fields = dict(fields or {})
