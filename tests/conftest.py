"""Shared fixtures: a fresh data dir and real SQLite file per test, the real app over Litestar's test client,
and the real CLI in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from litestar.testing import TestClient

from chatsupport.app import create_app
from chatsupport.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last. Playwright's sync API keeps an event loop running in the main thread from the first
    page until the session ends, after which ``asyncio.run`` (used by many other tests) refuses to start."""
    items.sort(key=lambda item: item.path.name.endswith("_browser.py"))


def make_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSUPPORT_")}
    env.update({"CHATSUPPORT_DATA_DIR": str(data_dir), "CHATSUPPORT_MODELS_DIR": str(data_dir.parent / "models"),
                "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env.update({f"CHATSUPPORT_{k}": v for k, v in extra.items()})
    return env


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return load_settings(env=make_env(data_dir))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def run_cli(data_dir: Path, *args: str, input: str | None = None, timeout: float = 120,
            **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run ``chatsupport ARGS`` through its real entry point (``python -m chatsupport`` on this checkout)."""
    return subprocess.run([sys.executable, "-m", "chatsupport", *args], env=make_env(data_dir, **extra_env),
                          capture_output=True, text=True, input=input, timeout=timeout, cwd=ROOT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``chatsupport serve`` in a subprocess on 127.0.0.1, talked to over real HTTP."""

    def __init__(self, data_dir: Path, **extra_env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"server-{self.port}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log_fh = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chatsupport", "serve", "--port", str(self.port)],
            env=make_env(data_dir, **extra_env), stdout=self._log_fh, stderr=subprocess.STDOUT, cwd=ROOT,
        )

    def wait(self, path: str = "/healthz", status: int = 200, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == status:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{path} not {status} after {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_fh.close()
        return self.process.returncode


@pytest.fixture
def live_server(data_dir: Path) -> Iterator[LiveServer]:
    server = LiveServer(data_dir)
    try:
        server.wait()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export of the embedding model per test session (made with torch in a child process)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def embedder(model_cache: Path):  # noqa: ANN201 - chatsupport.retrieval.embedder.Embedder
    from chatsupport.retrieval.embedder import Embedder

    loaded = Embedder(cache_dir=model_cache)
    loaded.encode(["warm up"])
    return loaded


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~0.5 MB random-weight llama GGUF with a byte-level BPE vocab, ChatML specials and a chat template."""
    from llm_support import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-chatml.gguf")


@pytest.fixture(scope="session")
def llama_server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``llama_cpp.server`` serving the tiny model on 127.0.0.1: a real OpenAI-compatible peer. Yields the base
    URL the way the OpenAI SDK takes it (``http://127.0.0.1:PORT/v1``)."""
    port = free_port()
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_gguf), "--host",
                                "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--n_threads", "1"],
                               stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {process.returncode}: see {log.name}")
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"llama_cpp.server did not start: see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
