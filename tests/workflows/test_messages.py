"""Message decoding refuses a Literal field's value outside its choices, naming the field and the allowed values."""

from __future__ import annotations

import pytest

from contracts.messages import MessageRefused, decode
from contracts.models import HealthChange, VMRef


def test_a_literal_field_takes_one_of_its_values() -> None:
    assert decode(HealthChange, {"healthy": False, "status": "unreachable"}).status == "unreachable"
    assert decode(VMRef, {"provider": "hetzner", "vm_id": "1", "name": "n"}).provider == "hetzner"


@pytest.mark.parametrize("provider", ["aws", "Hetzner", "", 3, None])
def test_a_value_outside_a_literal_is_refused_naming_the_choices(provider: object) -> None:
    with pytest.raises(MessageRefused) as refused:
        decode(VMRef, {"provider": provider, "vm_id": "1", "name": "n"})
    assert str(refused.value) == "provider: must be one of: local, hetzner, digitalocean, vultr"
