"""The payload codec with real AES-GCM: round trip, key ids, rotation, plain payloads, Vault Transit data keys."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import hvac
import pytest
from temporalio.api.common.v1 import Payload

import devstack
from workers.codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecConfigError,
    CodecError,
    CodecKey,
    EncryptionCodec,
    Keyring,
    UnknownKeyId,
    data_converter,
    encode_keyring_spec,
    keyring_from_vault,
    new_vault_data_key,
)
from workflows.models import Decision

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "acct-sensitive-7f3a"


async def test_round_trip_encrypts_every_payload_and_restores_it() -> None:
    converter = data_converter(Keyring.generate("k1"))
    original = Decision(approver="alice", reason=SECRET)
    encoded = await converter.encode([original, {"account_id": SECRET}, None])
    assert len(encoded) == 3
    for p in encoded:
        assert p.metadata["encoding"] == ENCODING and p.metadata[KEY_ID_METADATA] == b"k1"
        assert SECRET.encode() not in p.SerializeToString()
    assert len({p.data[:12] for p in encoded}) == 3, "every payload needs its own nonce"
    decoded = await converter.decode(encoded, [Decision, dict, type(None)])
    assert decoded == [original, {"account_id": SECRET}, None]


async def test_same_value_twice_gives_different_ciphertexts() -> None:
    codec = EncryptionCodec(Keyring.generate("k1"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"same"')
    a, b = await codec.encode([plain, plain])
    assert a.data != b.data


async def test_unknown_key_id_fails_naming_the_id_not_the_key() -> None:
    old = CodecKey.generate("old-key")
    encoded = await EncryptionCodec(Keyring([old])).encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    other = CodecKey.generate("new-key")
    with pytest.raises(UnknownKeyId) as err:
        await EncryptionCodec(Keyring([other])).decode(encoded)
    message = str(err.value)
    assert "old-key" in message and "new-key" in message
    for material in (old.material, other.material):
        assert base64.b64encode(material).decode() not in message and material.hex() not in message


async def test_wrong_key_under_the_same_id_fails_authentication() -> None:
    payload = Payload(metadata={"encoding": b"json/plain"}, data=b"1")
    encoded = await EncryptionCodec(Keyring.generate("k1")).encode([payload])
    with pytest.raises(CodecError, match="'k1' failed authentication"):
        await EncryptionCodec(Keyring.generate("k1")).decode(encoded)


async def test_relabelled_key_id_fails_authentication() -> None:
    a, b = CodecKey.generate("a"), CodecKey.generate("b")
    (encoded,) = await EncryptionCodec(Keyring([a, b])).encode([Payload(metadata={"encoding": b"json/plain"})])
    encoded.metadata[KEY_ID_METADATA] = b"b"
    with pytest.raises(CodecError, match="failed authentication"):
        await EncryptionCodec(Keyring([a, b])).decode([encoded])


async def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    old, new = CodecKey.generate("2026-01"), CodecKey.generate("2026-04")
    before = await data_converter(Keyring([old])).encode([{"v": 1}])
    rotated = data_converter(Keyring([new, old]))
    after = await rotated.encode([{"v": 2}])
    assert after[0].metadata[KEY_ID_METADATA] == b"2026-04"
    assert await rotated.decode([*before, *after], [dict, dict]) == [{"v": 1}, {"v": 2}]
    with pytest.raises(UnknownKeyId, match="2026-01"):
        await data_converter(Keyring([new])).decode(before, [dict])


async def test_plain_json_payload_passes_through_decode() -> None:
    # What the Web UI's signal dialog sends when no codec endpoint is configured.
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"approver": "alice", "reason": "ok"}')
    converter = data_converter(Keyring.generate())
    (decoded,) = await converter.decode([plain], [Decision])
    assert decoded == Decision(approver="alice", reason="ok")


async def test_failure_messages_are_encrypted_too() -> None:
    from temporalio.api.failure.v1 import Failure
    from temporalio.exceptions import ApplicationError

    converter = data_converter(Keyring.generate())
    failure = Failure()
    await converter.encode_failure(ApplicationError(f"vm at {SECRET} unhealthy"), failure)
    assert SECRET.encode() not in failure.SerializeToString()
    assert SECRET in str(await converter.decode_failure(failure))


async def test_keyring_parsing_and_errors_never_echo_material() -> None:
    k1, k2 = CodecKey.generate("one"), CodecKey.generate("two")
    ring = Keyring.parse(encode_keyring_spec([k1, k2]))
    assert (ring.active_id, ring.key_ids) == ("one", ("one", "two"))
    assert base64.b64encode(k1.material).decode() not in repr(ring) + repr(k1)
    with pytest.raises(CodecConfigError, match="32 bytes"):
        Keyring.parse("short:" + base64.b64encode(b"x" * 16).decode())
    with pytest.raises(CodecConfigError, match="not valid base64"):
        Keyring.parse("bad:!!!notbase64")
    with pytest.raises(CodecConfigError, match="unique"):
        Keyring([k1, dataclasses.replace(k2, key_id="one")])
    with pytest.raises(CodecConfigError, match="key id"):
        CodecKey("has space", k1.material)


async def test_keyring_from_env(tmp_path: Path) -> None:
    key = CodecKey.generate("env-key")
    spec = encode_keyring_spec([key])
    assert Keyring.from_env({}) is None
    assert Keyring.from_env({"LOBSTACK_CODEC_KEYS": spec}).key_ids == ("env-key",)  # type: ignore[union-attr]
    path = tmp_path / "keys"
    path.write_text(spec + "\n")
    assert Keyring.from_env({"LOBSTACK_CODEC_KEYS_FILE": str(path)}).active_id == "env-key"  # type: ignore[union-attr]
    with pytest.raises(CodecConfigError, match="only one"):
        Keyring.from_env({"LOBSTACK_CODEC_KEYS": spec, "LOBSTACK_CODEC_KEYS_FILE": str(path)})


async def test_vault_transit_data_keys(openbao: devstack.OpenBaoDev) -> None:
    vault = hvac.Client(url=openbao.addr, token=openbao.root_token)
    if "transit/" not in vault.sys.list_mounted_secrets_engines()["data"]:
        vault.sys.enable_secrets_engine("transit", path="transit")
    first, wrapped = new_vault_data_key(vault, "dk-1", transit_key="lobstack-codec-test")
    assert wrapped.startswith("vault:v1:") and base64.b64encode(first.material).decode() not in wrapped
    encoded = await EncryptionCodec(Keyring([first])).encode([Payload(metadata={"encoding": b"json/plain"})])

    # A restarted worker holds only the wrapped form and recovers the same key in memory.
    _, wrapped2 = new_vault_data_key(vault, "dk-2", transit_key="lobstack-codec-test")
    ring = keyring_from_vault(vault, [("dk-2", wrapped2), ("dk-1", wrapped)], transit_key="lobstack-codec-test")
    assert ring.active_id == "dk-2"
    await EncryptionCodec(ring).decode(encoded)

    env = {
        "VAULT_ADDR": openbao.addr,
        "VAULT_TOKEN": openbao.root_token,
        "LOBSTACK_CODEC_WRAPPED_KEYS": f"dk-1:{wrapped}",
        "LOBSTACK_CODEC_TRANSIT_KEY": "lobstack-codec-test",
    }
    from_env = Keyring.from_env(env)
    assert from_env is not None and from_env.key_ids == ("dk-1",)
    await EncryptionCodec(from_env).decode(encoded)

    with pytest.raises(CodecConfigError, match="dk-x") as err:
        keyring_from_vault(vault, [("dk-x", "vault:v1:AAAA")], transit_key="lobstack-codec-test")
    assert openbao.root_token not in str(err.value)
