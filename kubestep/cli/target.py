"""Where the CLI sends its requests: the management API on AWS (SigV4-signed, credentials
from the botocore chain) or the embedded local runtime recorded under $KUBESTEP_HOME.

Each setting comes from the first of: a flag (`--endpoint`, `--service`, `--region`,
`--profile`); the context named by `--context` (or KUBESTEP_CONTEXT); the environment
(KUBESTEP_API_URL, AWS_REGION / AWS_DEFAULT_REGION, AWS_PROFILE); the current context
(`kubestep config use-context`); and, with no endpoint anywhere, the local runtime.
KUBESTEP_API_URL set but empty means the local runtime, whatever the current context (what
`kubestep get-credentials` writes into a kubeconfig's exec environment for a local cluster)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from kubestep.api.client import ApiClient
from kubestep.cli import contexts
from kubestep.cli.contexts import home
from kubestep.cli.errors import CliError, InputError

__all__ = [
    "FLAGS_KEY",
    "Target",
    "client",
    "home",
    "local_state_file",
    "local_target",
    "read_local_state",
    "resolve",
    "target_of",
]

FLAGS_KEY = "kubestep.flags"  # ctx.meta: the global flags, wherever on the command line they were given
STACK_PREFIX = "kubestep-"
SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return pid > 0


@dataclass
class Target:
    endpoint: str
    region: str | None
    profile: str | None
    source: str  # where the endpoint came from, for messages
    # Every endpoint that was named is signed (API Gateway with IAM auth; the local runtime's
    # stand-in accepts any signature, e.g. with `kubestep local env`'s dummy credentials); the
    # local runtime found through its state file needs no credentials at all.
    sign: bool = True

    def client(self) -> ApiClient:
        try:
            return ApiClient(self.endpoint, region=self.region, profile=self.profile, sign=self.sign)
        except ValueError as exc:
            raise InputError(f"{exc} (from {self.source})") from None
        except Exception as exc:  # botocore's ProfileNotFound and friends
            raise InputError(f"{' '.join(str(exc).split())} (from {self.source})") from None


def stack_api_url(service: str, region: str | None, profile: str | None) -> str:
    """The `ApiUrl` output of the stack `kubestep-<service>` (CloudFormation, through boto3)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    if not SERVICE_NAME.match(service) or len(service) > 24:
        raise InputError(f"--service {service[:40]!r} is not a management service name")
    stack = f"{STACK_PREFIX}{service}"
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        answer = session.client("cloudformation").describe_stacks(StackName=stack)
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if "does not exist" in message:
            raise CliError(f"no stack {stack} in region {session.region_name}: {message}") from None
        raise CliError(f"cannot read stack {stack}: {message}") from None
    except NoCredentialsError:
        where = f"profile {profile}" if profile else "the environment, ~/.aws or --profile"
        raise InputError(f"cannot read stack {stack}: no AWS credentials found in {where} (aws configure)") from None
    except NoRegionError:
        raise InputError(f"cannot read stack {stack}: no AWS region: pass --region or set AWS_REGION") from None
    except BotoCoreError as exc:  # ProfileNotFound, an endpoint that cannot be reached, ...
        raise InputError(f"cannot read stack {stack}: {' '.join(str(exc).split())}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for s in answer["Stacks"] for o in s.get("Outputs", [])}
    if "ApiUrl" not in outputs:
        raise CliError(f"stack {stack} has no ApiUrl output (is it a kubestep management service?)")
    return outputs["ApiUrl"]


def local_target(why: str | None = None) -> Target:
    """The local runtime of this `$KUBESTEP_HOME`, where it listens now: every `kubestep local up`
    rewrites `local.json` with its endpoints, so resolving again follows a restart on other ports
    (a long-running client such as the dashboard resolves a local context again when a request
    cannot connect). `why` names the context that chose it, for the messages."""
    state = read_local_state()
    if not state or not state.get("api_url"):
        if why is None:
            raise click.UsageError(
                "no management API to talk to: run `kubestep local up --detach`, pass --endpoint URL or --service "
                "NAME, set KUBESTEP_API_URL, or choose a context (kubestep config use-context NAME)"
            )
        raise CliError(f"{why} is the local runtime, which is not running: start it with `kubestep local up --detach`")
    pid = int(state.get("pid") or 0)
    if pid and not _alive(pid):
        raise CliError(
            f"the local runtime recorded in {local_state_file()} (pid {pid}) is not running: "
            "start it with `kubestep local up --detach`, or pass --endpoint / --context"
        )
    return Target(state["api_url"], None, None, why or "the local runtime", sign=False)


def resolve(flags: dict[str, Any]) -> Target:
    config = contexts.load()
    env = os.environ
    named = flags.get("context") or env.get("KUBESTEP_CONTEXT") or None
    explicit = config.get(named) if named else None
    everything = config.all()
    current = everything.get(config.current) if (config.current and not named) else None

    def first(*values: str | None) -> str | None:
        return next((v for v in values if v), None)

    region = first(
        flags.get("region"),
        explicit and explicit.region,
        env.get("AWS_REGION"),
        env.get("AWS_DEFAULT_REGION"),
        current and current.region,
    )
    profile = first(
        flags.get("profile"), explicit and explicit.profile, env.get("AWS_PROFILE"), current and current.profile
    )

    if flags.get("endpoint"):
        return Target(flags["endpoint"], region, profile, "--endpoint")
    if flags.get("service"):
        return Target(stack_api_url(flags["service"], region, profile), region, profile, "--service")
    env_url = env.get("KUBESTEP_API_URL")
    for context, why in ((explicit, "context"), (None, "env"), (current, "current context")):
        if why == "env":
            if env_url:
                return Target(env_url, region, profile, "KUBESTEP_API_URL")
            if env_url == "":
                break  # set but empty: the local runtime
            continue
        if context is None:
            continue
        if context.endpoint:
            return Target(context.endpoint, region, profile, f"{why} {context.name}")
        if context.service:
            url = stack_api_url(context.service, region, profile)
            return Target(url, region, profile, f"{why} {context.name}")
        return local_target(f"{why} {context.name}")  # a context with neither: the local runtime
    return local_target()


def target_of(ctx: click.Context) -> Target:
    """Where this command line's requests go (resolved once per command line)."""
    cached = ctx.meta.get("kubestep.target")
    if cached is None:
        cached = ctx.meta["kubestep.target"] = resolve(ctx.meta.get(FLAGS_KEY, {}))
    return cached


def client(ctx: click.Context) -> ApiClient:
    """The API client for this command line (cached for the command's lifetime)."""
    cached = ctx.meta.get("kubestep.client")
    if cached is None:
        cached = ctx.meta["kubestep.client"] = target_of(ctx).client()
    return cached
