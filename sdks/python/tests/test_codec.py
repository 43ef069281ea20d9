"""The SDK's JSON path: the fast C encoder and scanner agree with the json module."""

import json
import math

import pytest

from plexspaces import _dispatch


VALUES = [
    {},
    {"count": 5},
    {"a": [1, -2.5, True, False, None, "é\n\"\\"], "b": {"c": {}}, "big": 10**30},
    [1, [2, [3, []]]],
    "text with \u2028 and \x00",
    0.1,
    -0.0,
]


@pytest.mark.parametrize("value", VALUES)
def test_encodes_as_the_json_module_does(value):
    reference = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert _dispatch._dumps(value) == reference
    assert _dispatch._loads(reference) == json.loads(reference)


def test_the_fast_path_is_in_use_on_cpython():
    assert _dispatch._C_CODEC is not None


@pytest.mark.parametrize("text", [b' {"a": 1} ', b'\n{"a":1}\n', b'{"a":\t1}'])
def test_whitespace_around_and_inside_is_accepted(text):
    assert _dispatch._loads(text) == {"a": 1}


@pytest.mark.parametrize("text", [b'{"a":', b"nope", b"{} x", b"", b"\xff"])
def test_what_is_not_json_is_refused(text):
    with pytest.raises(ValueError):
        _dispatch._loads(text)


def test_cycles_and_non_finite_floats_are_refused_and_leave_no_trace():
    loop = []
    loop.append(loop)
    for bad in [{"a": loop}, {"x": math.nan}, [math.inf]]:
        with pytest.raises(ValueError):
            _dispatch._dumps(bad)
        # A failed encode leaves nothing behind that refuses the next one.
        assert _dispatch._dumps({"a": [1, [2]]}) == b'{"a":[1,[2]]}'
    with pytest.raises(TypeError):
        _dispatch._dumps({"a": object()})
    assert _dispatch._MARKERS == {}
