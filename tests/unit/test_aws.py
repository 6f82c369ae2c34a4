"""Eventual consistency: a just-created resource AWS cannot see yet makes a step pending."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from kubestep.aws import pending_until_visible
from kubestep.errors import ResourcePending


def fails_with(code: str, message: str = "boom"):
    @pending_until_visible
    def step() -> None:
        raise ClientError({"Error": {"Code": code, "Message": message}}, "Operation")

    return step


def test_not_yet_visible_resources_make_the_step_pending():
    with pytest.raises(ResourcePending, match="InvalidGroup.NotFound"):
        fails_with("InvalidGroup.NotFound")()
    message = "You must use a valid fully-formed launch template. The specified launch template does not exist."
    with pytest.raises(ResourcePending):
        fails_with("ValidationError", message)()


def test_other_errors_pass_through():
    with pytest.raises(ClientError):
        fails_with("UnauthorizedOperation")()
    with pytest.raises(ClientError):
        fails_with("ValidationError", "MinSize must be <= MaxSize")()
