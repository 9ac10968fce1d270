"""scripts/develop: a ready Home Assistant with this integration, until Ctrl-C.

Without GEMINI_API_KEY / GEMINI_VERTEX_SERVICE_ACCOUNT the fake Live server
runs in this process with the demo model; Home Assistant runs as a child
(stopped with this process, also when this process is killed). The folder
(./config by default) keeps the owner, the entry and the pipeline, so a second
start reuses them.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
import contextlib
import json
import os
from pathlib import Path
import signal
import sys

from tests.fake_live.__main__ import demo_server

from .client import ApiError, HomeAssistantClient
from .process import REPOSITORY, InstanceError, check_port_free, home_assistant
from .provision import (
    Account,
    GeminiApiAccount,
    Owner,
    account_from_env,
    fingerprint,
    provision,
    sign_in,
)

FAKE_STATE = ".develop-fake.json"
LOGIN = ".develop-login.json"
ENTRY_STATE = ".develop-entry.json"


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@contextlib.asynccontextmanager
async def _fake_account(config_dir: Path, port: int) -> AsyncIterator[Account]:
    """Run the demo fake server (same key on every start); its account."""
    check_port_free(port, "the fake Gemini Live server (--fake-port)")
    path = config_dir / FAKE_STATE
    key = json.loads(path.read_text())["key"] if path.exists() else None
    async with demo_server(port, key) as server:
        path.write_text(json.dumps({"key": server.api_key}))
        _say(f"develop: fake Gemini Live server (demo model) on {server.base_url}")
        yield GeminiApiAccount(api_key=server.api_key, base_url=server.base_url)


def _entry_of_other_account(config_dir: Path, account: Account) -> str | None:
    """Return the entry the last start made, when it was for another account."""
    path = config_dir / ENTRY_STATE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if state["account"] == fingerprint(account):
        return None
    _say("develop: the account changed since the last start: replacing its entry")
    return str(state["entry_id"])


def _remember_entry(config_dir: Path, entry_id: str, account: Account) -> None:
    """Record which entry serves which account, for the next start."""
    state = {"entry_id": entry_id, "account": fingerprint(account)}
    (config_dir / ENTRY_STATE).write_text(json.dumps(state))


async def run(config_dir: Path, port: int, fake_port: int) -> int:
    """Start, provision, print how to log in, wait for a signal; exit code."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await _develop(config_dir, port, fake_port)
    except asyncio.CancelledError:
        _say("develop: stopped")
        return 0
    except (InstanceError, ApiError, OSError) as err:
        _say(f"develop: {err}")
        return 1


async def _develop(config_dir: Path, port: int, fake_port: int) -> int:
    owner = Owner.load_or_create(config_dir / LOGIN)
    async with contextlib.AsyncExitStack() as stack:
        account = account_from_env()
        if account is None:
            account = await stack.enter_async_context(
                _fake_account(config_dir, fake_port)
            )
        else:
            _say(
                "develop: using Google's Gemini Live service (key from the environment)"
            )
        ha = await stack.enter_async_context(
            home_assistant(
                config_dir,
                port=port,
                skip_pip=False,
                log_level="warning",
                inherit_output=True,
            )
        )
        client = await stack.enter_async_context(
            HomeAssistantClient(ha.url, await sign_in(ha.url, owner))
        )
        assistant = await provision(
            client,
            account,
            replace=_entry_of_other_account(config_dir, account),
            created=lambda entry_id: _remember_entry(config_dir, entry_id, account),
        )
        if assistant is not None and not (config_dir / ENTRY_STATE).exists():
            _say(
                "develop: keeping the Gemini Live entry this folder already had"
                " (delete it in Settings to be configured for this account)"
            )
        await client.close()
        agent = assistant.conversation_entity if assistant else "none"
        _say(
            "\n".join(
                [
                    "",
                    f"Home Assistant is ready: {ha.url}",
                    f"  user name: {owner.username}",
                    f"  password:  {owner.password}",
                    f"  voice assistant: {agent} (preferred: open Assist, top right)",
                    "Ctrl-C stops it.",
                    "",
                ]
            )
        )
        code = await ha.process.wait()
        _say(f"develop: Home Assistant exited with {code}")
        return code or 1


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(prog="scripts/develop")
    parser.add_argument("--config", type=Path, default=REPOSITORY / "config")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("GEMINI_LIVE_HA_PORT", "8123"))
    )
    parser.add_argument(
        "--fake-port",
        type=int,
        default=int(os.environ.get("GEMINI_LIVE_FAKE_PORT", "8124")),
    )
    args = parser.parse_args()
    args.config.mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(run(args.config.resolve(), args.port, args.fake_port)))


if __name__ == "__main__":
    main()
