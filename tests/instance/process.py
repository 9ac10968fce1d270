"""Run a real Home Assistant process on a configuration folder it writes."""

# Test helpers take a timeout argument.
# ruff: noqa: ASYNC109
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import ctypes
from dataclasses import dataclass
import json
import os
from pathlib import Path
import signal
import socket
from typing import IO

import aiohttp

REPOSITORY = Path(__file__).resolve().parents[2]
INTEGRATION = REPOSITORY / "custom_components" / "gemini_live"
DEFAULT_VENV = REPOSITORY / ".venv"

START_TIMEOUT = 120.0
"""Seconds a start may take (the first start of a fresh folder is the slowest)."""
STOP_TIMEOUT = 30.0
"""Seconds between SIGTERM and SIGKILL."""
LOG_TAIL_LINES = 60
HTTP_FAILED = ("Failed to create HTTP server", "could not be applied, reverting")
"""What Home Assistant logs when it cannot listen on the configured port (it
then runs on without HTTP, or on the port it listened on before)."""
PR_SET_PDEATHSIG = 1

CONFIGURATION = """\
# Written by tests/instance on every start: put your own settings in
# packages/*.yaml (one file per package, e.g. packages/logger.yaml).
homeassistant:
  packages: !include_dir_named packages

frontend:
config:
api:
assist_pipeline:
conversation:
media_source:
{demo}
{http}
logger:
  default: {log_level}
  logs:
    custom_components.gemini_live: debug
"""


class InstanceError(RuntimeError):
    """Home Assistant did not start, or stopped; the message ends with its log."""


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_port_free(port: int, what: str) -> None:
    """Raise InstanceError when something already listens on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Home Assistant binds: a port left in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as err:
            raise InstanceError(
                f"port {port} for {what} is taken ({err.strerror}): stop what"
                " listens there, or choose another port"
            ) from None


HTTP = """\
http:
  server_host: 127.0.0.1
  server_port: {port}
"""
HTTP_STORE = Path(".storage") / "http"


def stored_port(config_dir: Path) -> int | None:
    """Return the port a started folder serves on, None for a new folder.

    Home Assistant takes its HTTP settings from configuration.yaml once, then
    keeps them in .storage/http (the pending trial first, until confirmed).
    """
    path = config_dir / HTTP_STORE
    if not path.exists():
        return None
    data = json.loads(path.read_text())["data"]
    pending = data.get("pending")
    slot = pending if pending and not pending.get("error") else data["stable"]
    return int(slot["server_port"])


def write_configuration(
    config_dir: Path, port: int, *, demo: bool = True, log_level: str = "warning"
) -> None:
    """Write configuration.yaml and link this integration into `config_dir`.

    The `http` settings go in only for a new folder (see `stored_port`).
    """
    (config_dir / "packages").mkdir(parents=True, exist_ok=True)
    http = "" if (config_dir / HTTP_STORE).exists() else HTTP.format(port=port)
    (config_dir / "configuration.yaml").write_text(
        CONFIGURATION.format(
            demo="demo:" if demo else "", http=http, log_level=log_level
        )
    )
    custom = config_dir / "custom_components"
    custom.mkdir(exist_ok=True)
    link = custom / "gemini_live"
    if link.is_symlink() or link.exists():
        if link.resolve() == INTEGRATION:
            return
        link.unlink()
    link.symlink_to(INTEGRATION, target_is_directory=True)


@dataclass(slots=True)
class Instance:
    """A started Home Assistant."""

    config_dir: Path
    port: int
    process: asyncio.subprocess.Process
    output: Path | None
    """The file holding the process's stdout and stderr (None: inherited)."""
    log_origin: tuple[int, int] | None = None
    """Inode and size of home-assistant.log before this start (None: none)."""

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last lines Home Assistant logged (for failure messages)."""
        path = self.output or self.config_dir / "home-assistant.log"
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        """Return what this start logged to Home Assistant's own log file."""
        path = self.config_dir / "home-assistant.log"
        try:
            with path.open("rb") as log:
                if (
                    self.log_origin
                    and self.log_origin[0] == os.fstat(log.fileno()).st_ino
                ):
                    log.seek(self.log_origin[1])  # not rotated yet: skip the old
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def fail(self, message: str) -> InstanceError:
        """Return an InstanceError whose message ends with the log's tail."""
        return InstanceError(
            f"{message}\n--- Home Assistant log ---\n{self.log_tail()}"
        )


def _prepare(
    python: Path, config_dir: Path, port: int | None, *, demo: bool, log_level: str
) -> int:
    """Check the interpreter, write the folder's configuration; the port."""
    if not python.exists():
        raise InstanceError(f"{python} not found: run scripts/setup first")
    config_dir.mkdir(parents=True, exist_ok=True)
    if (stored := stored_port(config_dir)) is not None and port not in (None, stored):
        raise InstanceError(
            f"{config_dir} serves on port {stored} (.storage/http): use that port"
            " or a new folder"
        )
    port = stored or port or free_port()
    check_port_free(port, "Home Assistant")
    write_configuration(config_dir, port, demo=demo, log_level=log_level)
    return port


def _terminate_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def _wait_until_answering(instance: Instance, timeout: float) -> None:
    """Wait until the HTTP API answers (GET /auth/providers, no token needed).

    It answers 400 until onboarding is done, 200 after; /api/ would log each
    unauthenticated probe as a failed login.
    """
    url = f"{instance.url}/auth/providers"
    async with aiohttp.ClientSession() as session:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if instance.process.returncode is not None:
                        raise instance.fail(
                            f"Home Assistant exited with {instance.process.returncode}"
                        )
                    if any(text in instance.log_text() for text in HTTP_FAILED):
                        raise instance.fail(
                            f"Home Assistant could not listen on port {instance.port}"
                        )
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with session.get(
                            url, timeout=aiohttp.ClientTimeout(total=2)
                        ) as response:
                            if response.status in (200, 400):
                                return
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise instance.fail(
                f"Home Assistant did not answer within {timeout:.0f} s"
            ) from None


async def stop(instance: Instance, timeout: float = STOP_TIMEOUT) -> int:
    """Stop Home Assistant: SIGTERM, then SIGKILL after `timeout` s; its exit code."""
    process = instance.process
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    return process.returncode  # type: ignore[return-value]


@contextlib.asynccontextmanager
async def home_assistant(
    config_dir: Path,
    *,
    venv: Path = DEFAULT_VENV,
    port: int | None = None,
    demo: bool = True,
    log_level: str = "warning",
    skip_pip: bool = True,
    inherit_output: bool = False,
    start_timeout: float = START_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
) -> AsyncIterator[Instance]:
    """Start `<venv>/bin/python -m homeassistant --config <config_dir>`.

    Writes configuration.yaml (on `port`, a free one by default; a started
    folder keeps its own, see `stored_port`) and links
    custom_components/gemini_live, waits until the API answers, and stops the
    process on exit (SIGTERM, then SIGKILL; it also gets SIGTERM if this
    process dies). Its stdout and stderr go to <config_dir>/hass.out, or to
    this process's own with `inherit_output`. `skip_pip` (tests): no
    requirement is installed at run time, so a missing one fails loudly.
    Raises InstanceError (with the log's tail) when it does not start.
    """
    python = venv / "bin" / "python"
    port = _prepare(python, config_dir, port, demo=demo, log_level=log_level)
    out_path = None if inherit_output else config_dir / "hass.out"
    out: IO[bytes] | None = out_path.open("wb") if out_path else None
    args = ["-m", "homeassistant", "--config", str(config_dir)]
    log = config_dir / "home-assistant.log"
    stat = log.stat() if log.exists() else None
    origin = (stat.st_ino, stat.st_size) if stat else None
    try:
        process = await asyncio.create_subprocess_exec(
            str(python),
            *args,
            *(["--skip-pip"] if skip_pip else []),
            cwd=config_dir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT if out else None,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # Ctrl-C reaches the caller, who stops it
            preexec_fn=_terminate_with_parent,
        )
    finally:
        if out:
            out.close()
    instance = Instance(config_dir, port, process, out_path, origin)
    try:
        await _wait_until_answering(instance, start_timeout)
        yield instance
    finally:
        await stop(instance, stop_timeout)
