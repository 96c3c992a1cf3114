"""Schemathesis against ``/schema/openapi.json`` of a real server on 127.0.0.1, signed in as a workspace owner.

Every documented operation gets generated requests, valid and invalid (bodies, query strings, path ids, headers),
and every response must pass ``not_a_server_error`` (no 5xx), ``status_code_conformance`` (the status is one
the operation documents) and ``response_schema_conformance`` (the body matches the documented schema). The run
is bounded and deterministic: ``CASES_PER_OPERATION`` valid and as many invalid examples per operation, Hypothesis
derandomized (a fixed seed), no example database, no shrinking; at least ``MIN_CASES`` requests in all. Every
failing operation is reported in one run, each with a curl command that reproduces it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from accounts_support import FAST_HASHING, PASSWORD
from conftest import ROOT, LiveServer, make_env

CASES_PER_OPERATION = 6  # per generation mode (valid and invalid requests)
MIN_CASES = 1000
OWNER = "owner@fuzz.example"
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Operations where fuzzing means nothing or ends the run: logging out ends the very session the fuzzer signs in
# with; the schema documents are the input here, not an API to fuzz. (No route deletes the signed-in user's
# workspace; add such a route here if one appears.)
EXCLUDED_PATHS = ["/api/v1/auth/logout", "/schema", "/schema/openapi.json", "/schema/{path}"]


class FuzzServer:
    def __init__(self, data_dir: Path):
        env = {**FAST_HASHING, "RUN_WORKER": "false"}
        created = subprocess.run(
            [sys.executable, "-m", "chatsupport", "create-admin", "--email", OWNER, "--workspace", "Fuzz Co",
             "--password-stdin"], input=PASSWORD, text=True, capture_output=True, cwd=ROOT,
            env=make_env(data_dir, **env))
        assert created.returncode == 0, created.stderr
        self.server = LiveServer(data_dir, **env)
        self.server.wait("/readyz", timeout=180)  # fuzz the app as it serves, not while the embedder loads
        login = httpx.post(self.server.url + "/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD})
        assert login.status_code == 200, login.text
        self.headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        bot = httpx.post(self.server.url + "/api/v1/chatbots", json={"name": "Fuzzed"}, headers=self.headers)
        assert bot.status_code == 201, bot.text


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    server = FuzzServer(tmp_path_factory.mktemp("fuzz") / "data")
    try:
        yield server
    finally:
        code = server.server.stop()
        assert code in (0, -15), server.server.log.read_text()[-4000:]


def fuzz_operation(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> tuple[int, list[str]]:
    """``CASES_PER_OPERATION`` requests of one generation mode; the cases sent and the distinct failures."""
    sent, failures, seen = 0, [], set()

    @settings(max_examples=CASES_PER_OPERATION, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        try:
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
        except (AssertionError, FailureGroup) as exc:  # collected: one run reports every broken operation
            summary = [line for line in str(exc).strip().splitlines() if line.strip()][:14]
            kind = tuple(line.strip() for line in summary if line.strip().startswith(("- ST", "Received:")))
            if kind not in seen:  # one example of each kind of failure per operation
                seen.add(kind)
                failures.append("\n    ".join([f"{operation.method.upper()} {operation.path} ({mode.value})",
                                                *summary, f"reproduce: {case.as_curl_command(headers)}"]))

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing to make invalid: an operation without parameters
    return sent, failures


@pytest.mark.timeout(1200)  # a few minutes on an idle 2-core box; the suite may share it
def test_every_operation_conforms(fuzz_server: FuzzServer) -> None:
    schema = schemathesis.openapi.from_url(fuzz_server.server.url + "/schema/openapi.json")
    operations = [result.ok() for result in schema.exclude(path=EXCLUDED_PATHS).get_all_operations()]
    assert len(operations) > 40
    total, failures = 0, []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            sent, found = fuzz_operation(operation, mode, fuzz_server.headers)
            total += sent
            failures.extend(found)
    assert not failures, f"{len(failures)} failing case(s):\n" + "\n".join(failures)
    assert total >= MIN_CASES, total
    log = fuzz_server.server.log.read_text()
    assert "Traceback" not in log, log[-4000:]
