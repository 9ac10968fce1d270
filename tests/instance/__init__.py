"""A real Home Assistant process, provisioned as a client would.

Shared by scripts/develop, the browser test and the Home Assistant version
proof tests. Everything goes through Home Assistant's public HTTP and
WebSocket APIs; nothing is imported from Home Assistant::

    async with home_assistant(tmp_path / "config", venv=REPOSITORY / ".venv") as ha:
        token = await sign_in(ha.url, owner := Owner.create())  # onboarding
        async with HomeAssistantClient(ha.url, token) as client:
            assistant = await provision(
                client, GeminiApiAccount(api_key=fake.api_key, base_url=fake.base_url)
            )
            run = await client.run_pipeline(speech("what time is it", 16000))
            assert run.speech.startswith("It is")
            _, audio = await client.fetch(run.tts_url)

`home_assistant(config_dir, *, venv, port, demo, ...)` (process.py): starts
`<venv>/bin/python -m homeassistant --config <config_dir>` on 127.0.0.1 (a
free port unless given) with a written configuration.yaml (frontend, config,
api, assist_pipeline, conversation, media_source, demo optional) and
custom_components/gemini_live linked in; waits (bounded) until the API
answers; on exit SIGTERM, then SIGKILL. Yields an `Instance` (`url`, `port`,
`process`, `log_text()`, `log_tail()`); failures raise `InstanceError` ending
with the log's tail.

`sign_in(url, owner) -> token` (provision.py): onboarding (user, core config,
analytics, integration steps) with `Owner(name, username, password)`, or the
login flow once onboarded. `provision(client, account) -> Assistant`: waits
until Home Assistant runs, confirms the HTTP settings on trial, creates the
Gemini Live entry through the REST config flow (`GeminiApiAccount(api_key,
base_url=None, model=None)`, `VertexAccount(service_account_json,
project_id, location)`, or `account_from_env()`), unless one exists, and an
Assist pipeline of its STT, conversation and TTS entities set as preferred
(`Assistant(entry_id, pipeline_id, stt_entity, conversation_entity,
tts_entity)`).

`HomeAssistantClient(url, token)` (client.py): WebSocket `command(type,
**fields)`, `run_pipeline(pcm, sample_rate=16000, ...) -> PipelineRun`
(binary microphone frames with the handler id prefix, as the browser sends
them; `.heard`, `.speech`, `.tts_url`, `.error`, `.events`), `process(text)`
(conversation/process); REST `rest()`, `call_service()`, `state()`,
`wait_state()`, `fetch(path)` (e.g. a TTS proxy URL). Every wait is bounded;
errors raise `ApiError`.
"""

from .client import ApiError, HomeAssistantClient, PipelineRun
from .process import REPOSITORY, Instance, InstanceError, free_port, home_assistant
from .provision import (
    Account,
    Assistant,
    GeminiApiAccount,
    Owner,
    VertexAccount,
    account_from_env,
    provision,
    sign_in,
)

__all__ = [
    "REPOSITORY",
    "Account",
    "ApiError",
    "Assistant",
    "GeminiApiAccount",
    "HomeAssistantClient",
    "Instance",
    "InstanceError",
    "Owner",
    "PipelineRun",
    "VertexAccount",
    "account_from_env",
    "free_port",
    "home_assistant",
    "provision",
    "sign_in",
]
