"""Where the CLI sends its requests: the management API on AWS (SigV4-signed, credentials
from the botocore chain) or the embedded local runtime recorded under $KUBESTEP_HOME."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import click

from kubestep.api.client import ApiClient


def home() -> Path:
    return Path(os.environ.get("KUBESTEP_HOME", "~/.kubestep")).expanduser()


def local_state_file() -> Path:
    return home() / "local.json"


def read_local_state() -> dict | None:
    path = local_state_file()
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


@dataclass
class Target:
    endpoint: str | None
    region: str | None
    profile: str | None

    def client(self) -> ApiClient:
        endpoint = self.endpoint or os.environ.get("KUBESTEP_API_URL")
        if endpoint:
            return ApiClient(endpoint, region=self.region, profile=self.profile, sign=True)
        state = read_local_state()
        if state and state.get("api_url"):
            return ApiClient(state["api_url"], sign=False)
        raise click.UsageError(
            "no management API to talk to: run `kubestep local up --detach`, or pass --endpoint "
            "(or set KUBESTEP_API_URL) to the ApiUrl output of a deployed stack"
        )
