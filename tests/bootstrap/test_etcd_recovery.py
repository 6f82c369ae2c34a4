"""Real etcd (Debian's etcd-server): three members started on loopback from the etcd identity
kubestep renders for a 3-replica cluster form a cluster the way kubestep forms it (the first
replica initialises; the others are added as learners by `kubestep-etcd-member`, the script the
bootstrap runs, started, then promoted); a member replaced with its data dir keeps its identity
and the data without any membership change; a member replaced with an empty data dir follows
kubestep's recovery (remove the stale member registered under the replica's peer URL, add a
learner, start `existing`, promote). The cluster keeps quorum throughout: a write succeeds
between every add and its member's start.

Each replica's stable name stands for a loopback address (127.<a>.<b>.<i+1>, a block drawn
per test so that tests on other xdist workers never share a port), and a directory
stands for its etcd volume. No TLS here: the membership logic, not the certificates, is tested."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from kubestep.bootstrap import kubeadm
from tests.bootstrap.conftest import control_plane

MEMBER_SCRIPT = Path(kubeadm.__file__).with_name("scripts") / "etcd-member.sh"


def loopback_block() -> str:
    """127.<a>.<b>: the first three bytes of one test's replicas' addresses. Fixed addresses made
    two etcd modules running at once on two workers fight for the same ports."""
    return f"127.{random.randint(20, 99)}.{random.randint(1, 250)}"


def binary(name: str) -> str:
    path = shutil.which(name)
    # Not a skip: CI installs Debian's etcd-server and etcd-client (scripts/setup.sh).
    assert path, f"{name} is required: apt-get install etcd-server etcd-client (scripts/setup.sh does it as root)"
    return path


class Replica:
    """One control-plane replica's etcd: the identity kubestep renders, on a loopback address."""

    def __init__(self, index: int, base: Path, block: str):
        self.index = index
        params = control_plane(index)
        self.stable_name = params.replica_name
        address = f"{block}.{index + 1}"
        # kubestep's rendered identity flags, with the stable name standing for this address.
        self.flags = {
            flag: value.replace(f"https://{self.stable_name}:", f"http://{address}:")
            for flag, value in kubeadm.etcd_identity_flags(params).items()
        }
        self.name = self.flags["name"]
        self.peer_url = self.flags["initial-advertise-peer-urls"]
        self.client_url = self.flags["advertise-client-urls"]
        self.volume = base / f"etcd-volume-{index}"
        self.log = base / f"etcd-{index}.log"
        self.process: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        return self.volume / "data"  # the data dir is a subdirectory of the volume, as on instances

    def start(self, initial_cluster: str, state: str) -> None:
        flags = {
            **self.flags,
            "initial-cluster": initial_cluster,
            "initial-cluster-state": state,
            "data-dir": str(self.data_dir),
            # kubeadm's own listen flags: this replica's address.
            "listen-peer-urls": self.peer_url,
            "listen-client-urls": self.client_url,
        }
        self.volume.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [binary("etcd"), *(f"--{k}={v}" for k, v in flags.items())], stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def etcdctl(endpoints: list[str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "ETCDCTL_API": "3"}
    return subprocess.run(
        [binary("etcdctl"), f"--endpoints={','.join(endpoints)}", "--command-timeout=5s", *args],
        capture_output=True,
        text=True,
        env=env,
        check=check,
        timeout=30,
    )


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def members(endpoints: list[str]) -> dict[str, dict]:
    """Member name (or peer URL while unstarted) -> member, from `member list -w json`."""
    listed = json.loads(etcdctl(endpoints, "member", "list", "-w", "json").stdout)["members"]
    return {m.get("name") or m["peerURLs"][0]: m for m in listed}


def all_healthy(endpoints: list[str], count: int) -> bool:
    result = etcdctl(endpoints, "endpoint", "health", "--cluster", check=False)
    # etcdctl 3.4 prints the results on stderr, 3.5 on stdout.
    return result.returncode == 0 and (result.stdout + result.stderr).count("is healthy") == count


def kubestep_member(healthy: list[str], *args: str) -> str:
    """The bootstrap's etcd step, the real script: retried as the bootstrap retries it."""
    env = {**os.environ, "ETCDCTL_API": "3", "ETCDCTL_ENDPOINTS": ",".join(healthy)}
    deadline = time.monotonic() + 60
    while True:
        result = subprocess.run(
            ["bash", str(MEMBER_SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60
        )
        if result.returncode == 0:
            return result.stdout.strip()
        assert time.monotonic() < deadline, result.stderr
        time.sleep(1)


def kubestep_member_join(replica: Replica, healthy: list[str]) -> str:
    """Learner add, then (the cluster still writable) start `existing`, then promote."""
    initial_cluster = kubestep_member(healthy, "add-learner", replica.name, replica.peer_url)
    assert f"{replica.name}={replica.peer_url}" in initial_cluster.split(",")
    etcdctl(healthy, "put", f"/registry/kubestep/added/{replica.index}", "writable")  # quorum kept
    replica.start(initial_cluster, "existing")
    kubestep_member(healthy, "promote", replica.peer_url)
    return initial_cluster


@pytest.fixture
def replicas(tmp_path):
    binary("etcd")
    block = loopback_block()
    found = [Replica(i, tmp_path, block) for i in range(3)]
    yield found
    for replica in found:
        replica.stop()


def test_three_members_form_a_cluster_and_survive_both_kinds_of_replacement(replicas):
    first, second, third = replicas
    assert first.name == "cp-0.abcd1234.svc.kubestep.internal"
    assert first.flags["initial-cluster-token"] == "gke-abcd1234-etcd"
    endpoints = [r.client_url for r in replicas]

    # The initialising replica: a new cluster of one, on its stable identity.
    first.start(f"{first.name}={first.peer_url}", "new")
    wait_for(lambda: all_healthy([first.client_url], 1), "the first member")
    # The others join as kubestep's bootstrap does: a learner, started `existing`, promoted.
    for replica in (second, third):
        running = [r.client_url for r in replicas if r.process]
        kubestep_member_join(replica, running)
        count = len(running) + 1
        wait_for(lambda n=count: all_healthy(endpoints[:n], n), f"{replica.name} to join")
    before = members(endpoints)
    assert sorted(before) == sorted(r.name for r in replicas)
    assert {m["peerURLs"][0] for m in before.values()} == {r.peer_url for r in replicas}
    etcdctl(endpoints, "put", "/registry/kubestep/probe", "survives")

    # Replacement with the volume's data: same identity, same data dir, no membership change.
    second.stop()
    etcdctl([first.client_url, third.client_url], "put", "/registry/kubestep/quorum", "kept")  # 2 of 3
    second.start(f"{second.name}={second.peer_url}", "existing")
    wait_for(lambda: all_healthy(endpoints, 3), "the restarted member")
    assert {n: m["ID"] for n, m in members(endpoints).items()} == {n: m["ID"] for n, m in before.items()}
    assert etcdctl([second.client_url], "get", "--print-value-only", "/registry/kubestep/probe").stdout.strip() == (
        "survives"
    )

    # Replacement with an EMPTY volume: kubestep's recovery removes the stale member, adds, starts.
    third.stop()
    shutil.rmtree(third.volume)
    initial_cluster = kubestep_member_join(third, [first.client_url, second.client_url])
    assert sorted(initial_cluster.split(",")) == sorted(f"{r.name}={r.peer_url}" for r in replicas)
    wait_for(lambda: all_healthy(endpoints, 3), "the replacement member")
    after = members(endpoints)
    assert sorted(after) == sorted(r.name for r in replicas)
    assert after[third.name]["ID"] != before[third.name]["ID"]  # a new member under the same identity
    assert after[first.name]["ID"] == before[first.name]["ID"]
    assert not any(m.get("isLearner") for m in after.values())
    for replica in replicas:
        values = etcdctl([replica.client_url], "get", "--prefix", "--print-value-only", "/registry/kubestep/").stdout
        assert "survives" in values.split() and "kept" in values.split(), replica.name


def test_a_voting_member_added_before_it_runs_stops_the_cluster_a_learner_does_not(replicas):
    """What the bootstrap's join order rests on (etcd's "Runtime reconfiguration" guide: a
    two-member cluster needs both to make progress; its learner design: a learner does not
    count towards quorum), with the real etcd the harnesses use."""
    first, second, third = replicas
    first.start(f"{first.name}={first.peer_url}", "new")
    wait_for(lambda: all_healthy([first.client_url], 1), "the first member")
    endpoint = [first.client_url]
    # A learner that has not started: the one-member cluster still commits and reads.
    etcdctl(endpoint, "member", "add", second.name, f"--peer-urls={second.peer_url}", "--learner")
    assert etcdctl(endpoint, "put", "/probe", "with-a-learner", check=False).returncode == 0
    assert etcdctl(endpoint, "get", "/probe", check=False).returncode == 0
    # One pending learner at a time: the next joiner retries until this one is promoted.
    second_learner = etcdctl(
        endpoint, "member", "add", third.name, f"--peer-urls={third.peer_url}", "--learner", check=False
    )
    assert second_learner.returncode != 0 and "too many learner members" in second_learner.stderr
    learner = next(m for m in members(endpoint).values() if m.get("isLearner"))
    etcdctl(endpoint, "member", "remove", format(learner["ID"], "x"))
    # A voting member that has not started: quorum is two, one runs: writes and linearizable
    # reads time out, and etcd refuses the next member for want of started members.
    wait_for(
        lambda: (
            etcdctl(endpoint, "member", "add", second.name, f"--peer-urls={second.peer_url}", check=False).returncode
            == 0
        ),
        "the voting member's add (etcd settles the learner's removal first)",
        timeout=20,
    )
    put = etcdctl(endpoint, "put", "/probe", "without-quorum", check=False)
    # The client's deadline or the server's own request timeout, whichever comes first.
    assert put.returncode != 0 and ("deadline exceeded" in put.stderr or "request timed out" in put.stderr)
    assert etcdctl(endpoint, "get", "/probe", check=False).returncode != 0
    refused = etcdctl(endpoint, "member", "add", third.name, f"--peer-urls={third.peer_url}", check=False)
    assert refused.returncode != 0 and "not enough started members" in refused.stderr
