"""What a worker decodes with: untyped decoding never raises, and no payload fails a whole activation.

Workflow handlers take `*args: Any` (contracts/messages.py), so the SDK decodes what a sender put in a signal, update,
query or start input without a type. With the SDK's converter, a payload it cannot read (an unknown encoding, broken
JSON, a ciphertext no key opens) raises: a signal is dropped with an ERROR log, a start input fails the workflow task
again and again, and a codec error fails every task of the workflow, since the SDK decodes a whole activation at once.
A worker's converter instead hands such a payload to the handler as an `Undecodable` value, which it refuses, audits
and shows like any other bad message. Typed decoding (activity results) stays strict and says why it failed.

Clients keep the strict converter: a CLI reading a status with the wrong key should fail loudly (connection/codec.py).

Failures a worker writes carry our message only, never the worker's Python stack trace: Temporal shows them to people
(the Web UI's update dialog and event details, the CLI), and a stack names the worker's files and insides. The SDK
logs each stack where it happens (activity failures, failed workflow tasks), so operators keep it in the worker's log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    FailureConverter,
    PayloadCodec,
    PayloadConverter,
)

from contracts.messages import Undecodable

__all__ = [
    "EncodedMessageOnlyFailureConverter",
    "MessageOnlyFailureConverter",
    "PayloadUnreadable",
    "TolerantPayloadConverter",
    "with_converter",
    "worker_client",
    "worker_converter",
]

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


class MessageOnlyFailureConverter(FailureConverter):
    """The SDK's failure converter, without stack traces at any level of the failure chain."""

    encode_common_attributes = False

    def __init__(self) -> None:
        super().__init__()
        self._plain = DefaultFailureConverter()

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        self._plain.to_failure(exception, payload_converter, failure)
        level: Failure | None = failure
        while level is not None:
            level.stack_trace = ""
            # A level copied whole from an earlier failure (an activity's, re-raised) may be encoded already.
            if self.encode_common_attributes and not level.HasField("encoded_attributes"):
                # As the SDK's encoding converter does, level by level: the message goes into an encoded payload
                # (encrypted when the converter has a codec), so history shows only "Encoded failure".
                level.encoded_attributes.CopyFrom(
                    payload_converter.to_payloads([{"message": level.message, "stack_trace": ""}])[0]
                )
                level.message = "Encoded failure"
            level = level.cause if level.HasField("cause") else None

    def from_failure(self, failure: Failure, payload_converter: PayloadConverter) -> BaseException:
        return self._plain.from_failure(failure, payload_converter)


class EncodedMessageOnlyFailureConverter(MessageOnlyFailureConverter):
    """The same, with messages in encoded attributes, for a converter that encrypts payloads."""

    encode_common_attributes = True


def worker_converter(converter: DataConverter) -> DataConverter:
    """`converter` as a worker must use: its codec kept, nothing it reads raising, no stack trace in what it writes."""
    if converter.payload_converter_class is TolerantPayloadConverter:
        return converter
    codec = converter.payload_codec
    encoded = issubclass(converter.failure_converter_class, DefaultFailureConverterWithEncodedAttributes)
    return dataclasses.replace(
        converter,
        payload_converter_class=TolerantPayloadConverter,
        payload_codec=_MarkingCodec(codec) if codec is not None else None,
        failure_converter_class=EncodedMessageOnlyFailureConverter if encoded else MessageOnlyFailureConverter,
    )


def worker_client(client: Client) -> Client:
    """The same connection with `worker_converter`: what every worker polls with, whoever built the client."""
    converter = worker_converter(client.data_converter)
    if converter is client.data_converter:
        return client
    return with_converter(client, converter)


def with_converter(client: Client, converter: DataConverter) -> Client:
    """The same connection and options as `client`, with another data converter (e.g. one with the payload codec)."""
    config = client.config()
    config["data_converter"] = converter
    return Client(**config)
