"""What a worker decodes with: untyped decoding never raises, and no payload fails a whole activation.

Workflow handlers take `*args: Any` (workflows/messages.py), so the SDK decodes what a sender put in a signal, update,
query or start input without a type. With the SDK's converter, a payload it cannot read (an unknown encoding, broken
JSON, a ciphertext no key opens) raises: a signal is dropped with an ERROR log, a start input fails the workflow task
again and again, and a codec error fails every task of the workflow, since the SDK decodes a whole activation at once.
A worker's converter instead hands such a payload to the handler as an `Undecodable` value, which it refuses, audits
and shows like any other bad message. Typed decoding (activity results) stays strict and says why it failed.

Clients keep the strict converter: a CLI reading a status with the wrong key should fail loudly (workers/codec.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultPayloadConverter, PayloadCodec

from workflows.messages import Undecodable

__all__ = ["PayloadUnreadable", "TolerantPayloadConverter", "worker_client", "worker_converter"]

# Put by `_MarkingCodec` on a payload its codec could not decode, with the codec's reason (a key id at most).
_UNREADABLE = "lobstack-unreadable"


class PayloadUnreadable(RuntimeError):
    """A typed value could not be decoded; the message says why (never the payload's bytes)."""


class TolerantPayloadConverter(DefaultPayloadConverter):
    def from_payloads(self, payloads: Sequence[Payload], type_hints: list[type] | None = None) -> list[Any]:
        if type_hints:
            for payload in payloads:
                reason = payload.metadata.get(_UNREADABLE)
                if reason is not None:
                    raise PayloadUnreadable(reason.decode("utf-8", errors="replace"))
            return super().from_payloads(payloads, type_hints)
        return [self._untyped(payload) for payload in payloads]

    def _untyped(self, payload: Payload) -> Any:
        encoding = payload.metadata.get("encoding", b"").decode("utf-8", errors="replace")[:64] or "none"
        reason = payload.metadata.get(_UNREADABLE)
        if reason is not None:
            return Undecodable(encoding, reason.decode("utf-8", errors="replace"))
        try:
            [value] = super().from_payloads([payload])
        except Exception as err:
            # The error's text can quote the payload (a JSON error's document, a protobuf type name): keep its kind.
            return Undecodable(encoding, type(err).__name__)
        return value


class _MarkingCodec(PayloadCodec):
    """Decodes payload by payload; one the codec refuses is passed on marked with the reason instead of raising."""

    def __init__(self, inner: PayloadCodec) -> None:
        super().__init__()
        self.inner = inner

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await self.inner.encode(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded: list[Payload] = []
        for payload in payloads:
            try:
                decoded.extend(await self.inner.decode([payload]))
            except Exception as err:
                marked = Payload()
                marked.CopyFrom(payload)
                marked.metadata[_UNREADABLE] = f"{type(err).__name__}: {err}"[:300].encode()
                decoded.append(marked)
        return decoded


def worker_converter(converter: DataConverter) -> DataConverter:
    """`converter` as a worker must decode: its codec and failure converter kept, nothing it reads raising."""
    if converter.payload_converter_class is TolerantPayloadConverter:
        return converter
    codec = converter.payload_codec
    return dataclasses.replace(
        converter,
        payload_converter_class=TolerantPayloadConverter,
        payload_codec=_MarkingCodec(codec) if codec is not None else None,
    )


def worker_client(client: Client) -> Client:
    """The same connection with `worker_converter`: what every worker polls with, whoever built the client."""
    converter = worker_converter(client.data_converter)
    if converter is client.data_converter:
        return client
    return Client(**{**client.config(), "data_converter": converter})
