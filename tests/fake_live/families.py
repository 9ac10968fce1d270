"""Per-family production contract of the Live models (live-api.md 2.1, 3, 7).

One table: `FAMILIES` (what each family does on the wire, and which model ids
it serves per provider) and `RULES` (the setup fields each family rejects).
Every entry names the reference section it comes from. What the reference does
not state as a rejection is accepted; the few rules that only follow from the
reference documenting *another* mechanism for a family (`stated=False`) are
enforced only with `FakeLiveServer.strict_families`, and otherwise recorded in
`Connection.unverified_fields`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .scenario import INVALID_ARGUMENT, NOT_SUPPORTED

if TYPE_CHECKING:
    from .protocol import Provider, Rejection

type FamilyName = Literal["2.5", "3.1", "3.8", "3.8-extended-thinking"]
type Behavior = Literal["BLOCKING", "NON_BLOCKING"]

DEVELOPER: frozenset[Provider] = frozenset({"gemini_api"})
VERTEX: frozenset[Provider] = frozenset({"vertex_ai"})
BOTH: frozenset[Provider] = DEVELOPER | VERTEX


@dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    """What the models of one family do on the wire."""

    name: FamilyName
    models: dict[Provider, frozenset[str]]
    """The served model ids, per provider (7.1, 7.2)."""
    interaction_status: bool
    """Every turnComplete carries `interactionStatus` (3.2)."""
    merged_content: bool
    """Audio, outputTranscription and turnComplete may share one serverContent
    (3, 8.1); `FakeLiveServer.merge_server_content` overrides."""
    default_behavior: Behavior
    """A function declaration without `behavior` (2.1 tools, 7.1)."""
    context_update: bool
    """`contextUpdate` known to work (2.5: see the "contextUpdate" rule)."""


FAMILIES: dict[FamilyName, Family] = {
    # 7.1/7.2: 2.5 native audio (Developer previews, Vertex GA and preview).
    # 3: "2.5 models send one part per event". 2.1: `behavior` BLOCKING is the
    # default, NON_BLOCKING is "for async function calling on 2.5 native
    # audio". 3.2: interactionStatus is new (Aug 2026) and documented with the
    # 3.x SDK; the 2.5 previews predate it, so the fake leaves it out.
    "2.5": Family(
        name="2.5",
        models={
            "gemini_api": frozenset(
                {
                    "gemini-2.5-flash-native-audio-preview-12-2025",
                    "gemini-2.5-flash-native-audio-preview-09-2025",
                }
            ),
            "vertex_ai": frozenset(
                {
                    "gemini-live-2.5-flash-native-audio",
                    "gemini-live-2.5-flash-preview-native-audio-09-2025",
                }
            ),
        },
        interaction_status=False,
        merged_content=False,
        default_behavior="BLOCKING",
        context_update=False,
    ),
    # 7.1: "several parts per event; sync function calls only" (3.3 too).
    "3.1": Family(
        name="3.1",
        models={"gemini_api": frozenset({"gemini-3.1-flash-live-preview"})},
        interaction_status=True,
        merged_content=True,
        default_behavior="BLOCKING",
        context_update=True,
    ),
    # 7.1/7.2: "async (NON_BLOCKING) function calls are the default, `behavior:
    # BLOCKING` optional"; Vertex: "async tools with auto-unblocking".
    "3.8": Family(
        name="3.8",
        models={
            "gemini_api": frozenset({"gemini-3.8-live"}),
            "vertex_ai": frozenset({"gemini-3.8-live"}),
        },
        interaction_status=True,
        merged_content=True,
        default_behavior="NON_BLOCKING",
        context_update=True,
    ),
    # 7.1: the "high-reasoning variant" of 3.8 Live (Developer only); 7.5's 3.8
    # column differs for it only in thinking ("ext-thinking variant uses a
    # level"), so it shares 3.8 Live's wire behaviour and rules otherwise.
    "3.8-extended-thinking": Family(
        name="3.8-extended-thinking",
        models={"gemini_api": frozenset({"gemini-3.8-live-extended-thinking"})},
        interaction_status=True,
        merged_content=True,
        default_behavior="NON_BLOCKING",
        context_update=True,
    ),
}
_BY_MODEL: dict[str, Family] = {
    model: family
    for family in FAMILIES.values()
    for ids in family.models.values()
    for model in ids
}
EXT: FamilyName = "3.8-extended-thinking"


def served_models(provider: Provider) -> frozenset[str]:
    """Return every model id the families serve for `provider`."""
    return frozenset(
        model for f in FAMILIES.values() for model in f.models.get(provider, ())
    )


def family_of(model_id: str) -> Family:
    """Return the family of a model id.

    An unknown id added to a server's served models counts as 2.5 (the fake's
    behaviour before families existed).
    """
    return _BY_MODEL.get(model_id, FAMILIES["2.5"])


def values_at(data: Any, path: str) -> list[Any]:
    """Every value at a dotted `path`, walking into lists (absent: [])."""
    found = [data]
    for key in path.split("."):
        found = [
            node[key]
            for item in found
            for node in (item if isinstance(item, list) else [item])
            if isinstance(node, dict) and key in node
        ]
    return [v for item in found for v in (item if isinstance(item, list) else [item])]


def _present(_: Any) -> bool:
    return True


def _true(value: Any) -> bool:
    return value is True


def _false(value: Any) -> bool:
    return value is False


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A setup field that a family rejects: close `code` with `reason`."""

    field: str
    """Dotted camelCase path (lists walked); recorded as `rejected_field`."""
    families: Collection[FamilyName]
    rejects: Callable[[Any], bool] = _present
    """True for a value at `field` that is rejected."""
    providers: Collection[Provider] = BOTH
    code: int = 1007
    reason: str = INVALID_ARGUMENT
    stated: bool = True
    """False: the reference does not say so; only with `strict_families`."""

    def violated(self, setup: dict[str, Any], family: Family, provider: str) -> bool:
        """Tell whether `setup` breaks this rule for the family and provider."""
        return (
            family.name in self.families
            and provider in self.providers
            and any(self.rejects(value) for value in values_at(setup, self.field))
        )


RULES: tuple[Rule, ...] = (
    # 2.1 thinkingConfig, 5 (invalid config), 7.1 "no thinkingConfig": 3.8 Live
    # rejects it (a third party saw 1007). Extended Thinking takes a level.
    Rule(field="generationConfig.thinkingConfig", families={"3.8"}),
    # 2.1 enableAffectiveDialog, 7.1, 7.5, 10.5: removed from the Developer API
    # for 3.8 Live. Vertex 3.8: "on by default" (7.2); sources conflict, so the
    # field is accepted there.
    Rule(
        field="generationConfig.enableAffectiveDialog",
        families={"3.8", EXT},
        providers=DEVELOPER,
    ),
    # 2.1 proactivity, 7.1, 7.5: on 3.8 Live proactive audio is always on and
    # `proactiveAudio: false` is an error (7.2 Vertex says "on by default";
    # 2.1 and 7.5 state it for 3.8 Live without a provider).
    Rule(field="proactivity.proactiveAudio", families={"3.8", EXT}, rejects=_false),
    # 2.1, 7.1, 7.5: no affective dialog and no proactive audio on 3.1 Flash
    # Live; 5 "Feature not enabled for the model" is 1008 "Operation is not
    # implemented, or supported, or enabled." (turning them off is accepted).
    Rule(
        field="generationConfig.enableAffectiveDialog",
        families={"3.1"},
        rejects=_true,
        code=1008,
        reason=NOT_SUPPORTED,
    ),
    Rule(
        field="proactivity.proactiveAudio",
        families={"3.1"},
        rejects=_true,
        code=1008,
        reason=NOT_SUPPORTED,
    ),
    # 3.3, 7.1, 7.5: 3.1 Flash Live supports only synchronous function calls;
    # 5 "Feature not enabled for the model" (1008).
    Rule(
        field="tools.functionDeclarations.behavior",
        families={"3.1"},
        rejects=lambda value: value == "NON_BLOCKING",
        code=1008,
        reason=NOT_SUPPORTED,
    ),
    # ---- not stated as rejections: enforced only with strict_families ----
    # 2.1, 7.1, 7.5 document thinkingBudget (not thinkingLevel) for 2.5.
    Rule(
        field="generationConfig.thinkingConfig.thinkingLevel",
        families={"2.5"},
        stated=False,
    ),
    # 2.1, 7.1, 7.5 document thinkingLevel (not thinkingBudget) for 3.1 and
    # 3.8 Extended Thinking.
    Rule(
        field="generationConfig.thinkingConfig.thinkingBudget",
        families={"3.1", EXT},
        stated=False,
    ),
    # 7.1 lists the Extended Thinking levels as low/medium/high (no minimal).
    Rule(
        field="generationConfig.thinkingConfig.thinkingLevel",
        families={EXT},
        rejects=lambda value: value not in {"LOW", "MEDIUM", "HIGH"},
        stated=False,
    ),
    # Not in the reference: only NON_BLOCKING functions on Extended Thinking.
    # 7.1 documents `behavior: BLOCKING` as optional on 3.8 Live and says
    # nothing else for the variant.
    Rule(
        field="tools.functionDeclarations.behavior",
        families={EXT},
        rejects=lambda value: value == "BLOCKING",
        stated=False,
    ),
)
CONTEXT_UPDATE = "contextUpdate"
"""The `unverified_fields` entry of a contextUpdate on 2.5: 2.5 is "new in SDK
3.x ... too new to rely on" and has no docs page (2.5); no source says 2.5
serves it. With strict_families: 1007 with the unknown-name text (2, 0)."""


def check(
    setup: dict[str, Any],
    family: Family,
    provider: str,
    *,
    strict: bool,
    unverified: list[str],
) -> Rejection | None:
    """Return the first rule `setup` breaks (as a Rejection naming the field).

    A broken `stated=False` rule rejects only when `strict`; otherwise its
    field is appended to `unverified` and the setup is accepted.
    """
    from .protocol import Rejection  # protocol imports this module

    for rule in RULES:
        if not rule.violated(setup, family, provider):
            continue
        if rule.stated or strict:
            return Rejection(rule.code, rule.reason, rule.field)
        if rule.field not in unverified:
            unverified.append(rule.field)
    return None


def behavior_of(
    name: str, tools: list[dict[str, Any]] | None, family: Family
) -> Behavior:
    """Return the behavior of function `name` in `tools` (default: the family's)."""
    for tool in tools or []:
        for decl in tool.get("functionDeclarations") or []:
            if decl.get("name") == name and decl.get("behavior") in (
                "BLOCKING",
                "NON_BLOCKING",
            ):
                return decl["behavior"]  # type: ignore[no-any-return]
    return family.default_behavior
