"""moto_compat.server.draw_random_strings_without_choice: moto's random strings (request ids,
generated names) are the same strings, and leave moto's generator in the same state, as moto
draws them itself, seeded or not."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("length", "include_digits", "lower_case"),
    [(52, True, False), (20, True, False), (8, False, False), (12, True, True), (1, False, True), (0, True, False)],
)
def test_random_strings_are_the_ones_moto_draws(length: int, include_digits: bool, lower_case: bool) -> None:
    """Seeded alike, the patched generator and moto's own give the same strings, one after the
    other (so ids drawn later stay the same too) and end in the same state."""
    from moto.moto_api._internal.moto_random import MotoRandom

    from kubestep_local import moto_compat

    moto_own, patched = MotoRandom(1234), MotoRandom(1234)
    expected = [moto_own.get_random_string(length, include_digits, lower_case) for _ in range(200)]
    patches = moto_compat.PatchSet()
    moto_compat.server.draw_random_strings_without_choice(patches)
    try:
        assert patches, "the patch must apply on this Python (else moto's own is used)"
        drawn = [patched.get_random_string(length, include_digits, lower_case) for _ in range(200)]
    finally:
        patches.undo()
    assert drawn == expected
    assert patched.getstate() == moto_own.getstate()
    assert len(set(drawn)) > 100 or length < 3


def test_request_ids_follow_the_seed_of_deterministic_ids() -> None:
    """The request ids moto's answers carry (moto/utilities/aws_headers.py) under a seed are
    the ones moto draws under it, with its own keyword arguments."""
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    from kubestep_local import moto_compat

    with moto_compat.deterministic_ids(7):
        expected = [gen_amzn_requestid_long() for _ in range(50)]
    patches = moto_compat.PatchSet()
    moto_compat.server.draw_random_strings_without_choice(patches)
    try:
        with moto_compat.deterministic_ids(7):
            headers: dict[str, str] = {}
            drawn = [gen_amzn_requestid_long(headers) for _ in range(50)]
    finally:
        patches.undo()
    assert drawn == expected
    assert headers["x-amzn-requestid"] == expected[-1]
    assert all(len(request_id) == 52 for request_id in drawn)
