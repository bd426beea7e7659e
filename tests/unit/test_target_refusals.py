"""A refused webhook target says why without naming the address its host resolved to."""

from __future__ import annotations

import pytest

from service.webhooks.targets import TargetError, check_addresses

HIDDEN = ["10.1.2.3", "127.0.0.1", "169.254.169.254", "fd12:3456::1", "::ffff:192.168.1.1"]


@pytest.mark.parametrize("address", HIDDEN)
def test_a_name_that_resolves_to_a_private_address_is_refused_without_the_address(
    address: str,
) -> None:
    # given a name that resolves to a public and a private address
    # when it is checked
    with pytest.raises(TargetError) as refused:
        check_addresses("hooks.example", ["93.184.216.34", address])
    # then the refusal names the host and the kind of trouble, not the address
    message = str(refused.value)
    assert message == "the host 'hooks.example' resolves to a non-public address"
    assert address not in message and "93.184.216.34" not in message


def test_an_address_given_as_the_host_is_named_with_its_kind() -> None:
    # the client wrote the address itself: saying what it is reveals nothing
    with pytest.raises(TargetError, match=r"'127\.0\.0\.1' is a loopback address"):
        check_addresses("127.0.0.1", ["127.0.0.1"])
    with pytest.raises(TargetError, match=r"'\[::1\]' is a loopback address"):
        check_addresses("[::1]", ["::1"])
