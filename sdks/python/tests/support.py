"""What the SDK's tests share."""

import pytest

from plexspaces.testing import HostError


def refusal(call, **payload) -> tuple[str, str]:
    """The code and message of the HostError a handler let escape (it arrives as
    `actor_error` with the error type HostError, the message `code: message`)."""
    with pytest.raises(HostError) as raised:
        call(**payload)
    assert (raised.value.code, raised.value.error_type) == ("actor_error", "HostError"), raised.value
    code, _, message = raised.value.message.partition(": ")
    return code, message


def refused(call, **payload) -> str:
    """The code of the HostError a handler let escape."""
    return refusal(call, **payload)[0]
