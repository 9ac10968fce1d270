"""Checks hassfest and HACS would make: manifest, translations, icons, brand, HACS."""

from __future__ import annotations

import ast
import json
from pathlib import Path
import re
import struct
from typing import Any

from awesomeversion import AwesomeVersion
from homeassistant import components, const as ha_const
import pytest
import yaml

from custom_components.gemini_live import PLATFORMS
from custom_components.gemini_live.const import DOMAIN

ROOT = Path(__file__).parent.parent
INTEGRATION = ROOT / "custom_components" / DOMAIN


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


MANIFEST: dict[str, Any] = _load_json(INTEGRATION / "manifest.json")
STRINGS: dict[str, Any] = _load_json(INTEGRATION / "strings.json")

# hassfest: translation keys are lower-case slugs.
TRANSLATION_KEY = re.compile(r"^[a-z0-9-_]+$")
# homeassistant.helpers.config_validation.string_with_no_html
HTML = re.compile(r"<[a-z].*?>", re.IGNORECASE)
PLACEHOLDER = re.compile(r"\{(\w+)\}")
MDI = re.compile(r"^mdi:[a-z0-9-]+$")
# hassfest: placeholders must not be wrapped in single quotes.
SINGLE_QUOTED_PLACEHOLDER = re.compile(r"'\{\w+\}'")

# Every rule of hassfest's quality scale (script/hassfest/quality_scale.py).
QUALITY_SCALE_RULES: dict[str, tuple[str, ...]] = {
    "bronze": (
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ),
    "silver": (
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ),
    "gold": (
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ),
    "platinum": ("async-dependency", "inject-websession", "strict-typing"),
}
# Rules the config entry code itself must meet.
OWN_RULES = (
    "config-flow",
    "config-flow-test-coverage",
    "unique-config-entry",
    "runtime-data",
    "test-before-configure",
    "test-before-setup",
    "config-entry-unloading",
    "reauthentication-flow",
    "diagnostics",
    "exception-translations",
    "icon-translations",
    "reconfiguration-flow",
    "async-dependency",
    "inject-websession",
    "strict-typing",
    "brands",
)


def _leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[str, str]:
    """Flatten a translation tree to {"a.b.c": text}."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            flat.update(_leaves(value, path))
        else:
            flat[".".join(path)] = value
    return flat


def _source(name: str) -> str:
    return (INTEGRATION / name).read_text(encoding="utf-8")


# -- manifest.json -----------------------------------------------------------


def test_manifest_key_order() -> None:
    """Domain, name, then the other keys alphabetically (hassfest)."""
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_manifest_content() -> None:
    """The manifest holds what a custom integration needs."""
    assert MANIFEST["domain"] == DOMAIN == INTEGRATION.name
    assert MANIFEST["name"] == "Gemini Live"
    assert MANIFEST["config_flow"] is True
    assert (INTEGRATION / "config_flow.py").is_file()
    assert MANIFEST["integration_type"] == "service"
    assert MANIFEST["iot_class"] == "cloud_push"
    # numpy (audio resampling) is only a constraint of Home Assistant, not a
    # dependency; aiohttp and PyJWT are Home Assistant's own dependencies;
    # the FLAC writer is the integration's own (flac.py).
    assert MANIFEST["requirements"] == ["numpy>=2.0.0"]
    assert AwesomeVersion(MANIFEST["version"]).valid
    assert MANIFEST["version"] == "0.2.0"
    for key in ("documentation", "issue_tracker"):
        assert MANIFEST[key].startswith("https://")
    assert MANIFEST["codeowners"]
    for owner in MANIFEST["codeowners"]:
        assert re.fullmatch(r"@[\w-]+(/[\w-]+)?", owner)
    assert MANIFEST["quality_scale"] in QUALITY_SCALE_RULES
    assert set(MANIFEST) <= {
        "after_dependencies",
        "codeowners",
        "config_flow",
        "dependencies",
        "documentation",
        "domain",
        "integration_type",
        "iot_class",
        "issue_tracker",
        "name",
        "quality_scale",
        "requirements",
        "version",
    }


def test_manifest_dependencies_exist() -> None:
    """Declared dependencies are Home Assistant integrations."""
    components_dir = Path(components.__file__).parent
    for key in ("dependencies", "after_dependencies"):
        for domain in MANIFEST.get(key, []):
            assert (components_dir / domain / "manifest.json").is_file(), domain


def test_platform_dependencies_declared() -> None:
    """Each entity platform forwarded at setup is a declared dependency."""
    declared = set(MANIFEST.get("dependencies", [])) | set(
        MANIFEST.get("after_dependencies", [])
    )
    for platform in PLATFORMS:
        assert (INTEGRATION / f"{platform.value}.py").is_file()
        assert platform.value in declared


def test_config_schema_with_async_setup() -> None:
    """An integration with async_setup defines CONFIG_SCHEMA (hassfest)."""
    tree = ast.parse(_source("__init__.py"))
    functions = {
        node.name for node in tree.body if isinstance(node, ast.AsyncFunctionDef)
    }
    names = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert {"async_setup_entry", "async_unload_entry"} <= functions
    if "async_setup" in functions:
        assert "CONFIG_SCHEMA" in names
    assert not (INTEGRATION / "services.yaml").exists() or "async_setup" in functions


# -- hacs.json ---------------------------------------------------------------


def test_hacs_json() -> None:
    """hacs.json has a name, only keys HACS knows, and a reachable HA version."""
    hacs = _load_json(ROOT / "hacs.json")
    assert hacs == {
        "name": "Gemini Live",
        "homeassistant": "2026.10.0",
        "render_readme": True,
    }
    assert set(hacs) <= {
        "name",
        "content_in_root",
        "zip_release",
        "filename",
        "hide_default_branch",
        "country",
        "homeassistant",
        "hacs",
        "persistent_directory",
        "render_readme",
    }
    assert AwesomeVersion(ha_const.__version__) >= AwesomeVersion(hacs["homeassistant"])
    # HACS: exactly one integration under custom_components/.
    integrations = [
        path
        for path in (ROOT / "custom_components").iterdir()
        if path.is_dir() and not path.name.startswith((".", "__"))
    ]
    assert integrations == [INTEGRATION]


# -- brand -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size"), [("icon.png", 256), ("icon@2x.png", 512)], ids=["1x", "2x"]
)
def test_brand_icon(name: str, size: int) -> None:
    """Brand icons are square PNGs of the sizes HACS and the brands repo want."""
    data = (INTEGRATION / "brand" / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height, bit_depth, color_type = struct.unpack(">IIBB", data[16:26])
    assert (width, height) == (size, size)
    assert bit_depth == 8
    assert color_type == 6  # RGBA: transparent corners


# -- translations -------------------------------------------------------------


def test_english_translation_is_strings_json() -> None:
    """translations/en.json is a copy of strings.json."""
    assert _load_json(INTEGRATION / "translations" / "en.json") == STRINGS


def test_vietnamese_translation_complete() -> None:
    """vi.json translates every string, with the same placeholders."""
    english = _leaves(STRINGS)
    vietnamese = _leaves(_load_json(INTEGRATION / "translations" / "vi.json"))
    assert set(vietnamese) == set(english)
    for key, text in english.items():
        assert set(PLACEHOLDER.findall(vietnamese[key])) == set(
            PLACEHOLDER.findall(text)
        ), key
        if len(text) > 12 and not PLACEHOLDER.fullmatch(text):
            assert vietnamese[key] != text or text in {
                "Gemini API",
                "Vertex AI",
                "Gemini Live",
            }, f"{key} is not translated"


@pytest.mark.parametrize("language", ["strings", "en", "vi"])
def test_translation_strings_valid(language: str) -> None:
    """Keys are slugs; texts are non-empty, trimmed and free of HTML."""
    path = (
        INTEGRATION / "strings.json"
        if language == "strings"
        else INTEGRATION / "translations" / f"{language}.json"
    )
    for key, text in _leaves(_load_json(path)).items():
        for part in key.split("."):
            assert TRANSLATION_KEY.match(part), key
        assert isinstance(text, str), key
        assert text, key
        assert text == text.strip(), key
        assert not HTML.search(text), key
        assert "[%key:" not in text, "custom integrations get no key references"
        assert not SINGLE_QUOTED_PLACEHOLDER.search(text), key


def test_translation_structure() -> None:
    """Top-level keys and data-entry steps have the shape hassfest expects."""
    assert set(STRINGS) <= {
        "config",
        "config_subentries",
        "options",
        "selector",
        "exceptions",
        "entity",
        "issues",
        "services",
    }
    flows = [STRINGS["config"], *STRINGS["config_subentries"].values()]
    for flow in flows:
        for step_id, step in flow["step"].items():
            # hassfest: a step is not titled with the brand name.
            assert step.get("title") != MANIFEST["name"], step_id
            assert set(step) <= {
                "title",
                "description",
                "data",
                "data_description",
                "sections",
                "menu_options",
            }, step_id
            assert set(step.get("data_description", {})) <= set(step.get("data", {}))
            for name, sect in step.get("sections", {}).items():
                assert set(sect) <= {"name", "description", "data", "data_description"}
                assert sect["name"], name
                assert set(sect.get("data_description", {})) <= set(sect["data"])
    for key, exception in STRINGS["exceptions"].items():
        assert set(exception) == {"message"}, key


def _string_literals(pattern: str, source: str) -> set[str]:
    return set(re.findall(pattern, source))


def test_flow_errors_and_aborts_translated() -> None:
    """Every error and abort reason the flows use has a string."""
    source = _source("config_flow.py")
    errors = _string_literals(r'error(?:s\[[^\]]+\])? = "(\w+)"', source)
    errors |= _live_error_keys()
    aborts = _string_literals(r'reason="(\w+)"', source)
    assert errors >= {
        "cannot_connect",
        "invalid_auth",
        "invalid_location",
        "invalid_service_account",
        "model_not_found",
        "unknown",
    }
    config_errors = set(STRINGS["config"]["error"])
    agent_flow = STRINGS["config_subentries"]["conversation"]
    assert errors <= config_errors | set(agent_flow["error"])
    assert aborts <= set(STRINGS["config"]["abort"])
    assert "reconfigure_successful" in agent_flow["abort"]
    assert set(agent_flow["initiate_flow"]) == {"user", "reconfigure"}
    # Aborts raised by Home Assistant's own helpers used in the flow.
    assert {
        "already_configured",
        "already_in_progress",
        "reauth_successful",
        "reconfigure_successful",
    } <= set(STRINGS["config"]["abort"])
    steps = _string_literals(r'step_id="(\w+)"', source)
    assert steps == set(STRINGS["config"]["step"]) | set(agent_flow["step"])


def _live_error_keys() -> set[str]:
    """Every key errors.error_key gives, over all the Live client's errors."""
    from custom_components.gemini_live import live
    from custom_components.gemini_live.errors import error_key

    error_types = [
        value
        for value in vars(live).values()
        if isinstance(value, type) and issubclass(value, live.LiveError)
    ]
    assert len(error_types) >= 10
    return {error_key(error_type("x")) for error_type in error_types}


def test_exception_translations_used() -> None:
    """Every translation key raised at setup or at run time has a string."""
    keys = _live_error_keys()
    keys |= _string_literals(r'translation_key="(\w+)"', _source("voice/chat.py"))
    assert keys <= set(STRINGS["exceptions"])


def test_action_exceptions_translated() -> None:
    """Every error the actions raise (with placeholders given) has a string."""
    for name in ("actions.py", "images.py"):
        source = _source(name)
        keys = _string_literals(r'translation_key="(\w+)"', source)
        keys |= _string_literals(r'validation_error\(\s*"(\w+)"', source)
        assert keys, name
        assert keys <= set(STRINGS["exceptions"]), name


# -- services.yaml -----------------------------------------------------------


def test_actions_described() -> None:
    """services.yaml, the services strings and icons list the same actions."""
    actions: dict[str, Any] = yaml.safe_load(_source("services.yaml"))
    icons = _load_json(INTEGRATION / "icons.json")["services"]
    assert set(actions) == set(STRINGS["services"]) == set(icons)
    for action, spec in actions.items():
        strings = STRINGS["services"][action]
        assert set(strings) == {"name", "description", "fields"}, action
        assert set(strings["fields"]) == set(spec["fields"]), action
        for field, text in strings["fields"].items():
            assert set(text) == {"name", "description"}, field
        for field in spec["fields"].values():
            assert len(field["selector"]) == 1
        assert set(icons[action]) == {"service"}
        assert MDI.match(icons[action]["service"])


def test_selector_translations() -> None:
    """Selector options with a translation key are all translated."""
    from custom_components.gemini_live.const import (
        ACTIVITY_DETECTION_MODES,
        PROVIDERS,
    )

    assert set(STRINGS["selector"]["provider"]["options"]) == set(PROVIDERS)
    assert set(STRINGS["selector"]["activity_detection"]["options"]) == set(
        ACTIVITY_DETECTION_MODES
    )


# -- icons.json --------------------------------------------------------------


def test_icons() -> None:
    """icons.json uses mdi icons for sections that exist in strings.json."""
    icons = _load_json(INTEGRATION / "icons.json")
    assert set(icons) <= {"config", "options", "entity", "services", "issues"}
    for flow in ("config", "options"):
        for step_id, step in icons.get(flow, {}).get("step", {}).items():
            assert set(step) == {"sections"}
            for name, icon in step["sections"].items():
                assert MDI.match(icon), icon
                assert name in STRINGS[flow]["step"][step_id]["sections"]


# -- quality_scale.yaml ------------------------------------------------------


def _quality_scale() -> dict[str, str]:
    rules = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text())["rules"]
    statuses: dict[str, str] = {}
    for name, value in rules.items():
        if isinstance(value, dict):
            assert set(value) == {"status", "comment"}, name
            assert value["comment"].strip(), name
            statuses[name] = value["status"]
        else:
            assert value in {"done", "todo"}, f"{name} needs a comment"
            statuses[name] = value
    return statuses


def test_quality_scale_file() -> None:
    """Every rule is listed once with a valid status."""
    statuses = _quality_scale()
    all_rules = {rule for rules in QUALITY_SCALE_RULES.values() for rule in rules}
    assert set(statuses) == all_rules
    assert set(statuses.values()) <= {"done", "todo", "exempt"}
    for rule in OWN_RULES:
        assert statuses[rule] == "done", rule


def test_quality_scale_claim() -> None:
    """Every rule of the tier the manifest claims is done or exempt."""
    statuses = _quality_scale()
    tiers = list(QUALITY_SCALE_RULES)
    claimed = tiers.index(MANIFEST["quality_scale"])
    required = {
        rule for tier in tiers[: claimed + 1] for rule in QUALITY_SCALE_RULES[tier]
    }
    unmet = {rule for rule in required if statuses[rule] not in {"done", "exempt"}}
    assert not unmet
