"""Every translation key, error and abort reason the code uses exists in en.json."""

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import Any

import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.private_voice import config_flow, options_flow, satellite_flow
from custom_components.private_voice.const import DOMAIN

PACKAGE = Path(config_flow.__file__).parent
STRINGS: dict[str, Any] = json.loads(
    (PACKAGE / "translations" / "en.json").read_text(encoding="utf-8")
)
CONFIG: dict[str, Any] = STRINGS["config"]
SUBENTRIES: dict[str, Any] = STRINGS["config_subentries"]
# HA helpers that abort with a fixed reason.
IMPLIED_ABORTS = {
    "_abort_if_unique_id_configured": "already_configured",
    "async_update_reload_and_abort": "reconfigure_successful",
    "async_update_and_abort": "reconfigure_successful",
}
# The forms whose fields are fixed, by step.
STEP_SCHEMAS: dict[str, probatio.Schema] = {
    "user": config_flow.STEP_BASICS_SCHEMA,
    "reconfigure": config_flow.STEP_BASICS_SCHEMA,
    "zeroconf_confirm": config_flow.STEP_BASICS_SCHEMA,
    "remote": config_flow.STEP_REMOTE_SCHEMA,
    "services": config_flow.STEP_SERVICES_SCHEMA,
    "zeroconf_satellite": config_flow.STEP_SATELLITE_AREA_SCHEMA,
}
# The satellite subentry's forms, by step.
SATELLITE_STEP_SCHEMAS: dict[str, probatio.Schema] = {
    "user": satellite_flow.STEP_SATELLITE_SCHEMA,
    "reconfigure": satellite_flow.STEP_SATELLITE_SCHEMA,
}


def _leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else key)
    else:
        yield path, node


@dataclass
class UsedKeys:
    """What the source asks Home Assistant to translate."""

    step: set[str] = field(default_factory=set)
    abort: set[str] = field(default_factory=set)
    error: set[str] = field(default_factory=set)
    progress: set[str] = field(default_factory=set)
    translation_key: set[str] = field(default_factory=set)
    # Menu step: its options.
    menu: dict[str, list[str]] = field(default_factory=dict)


def _constant(node: ast.expr) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def _strings(node: ast.expr | None) -> set[str]:
    """Return the non-empty strings ``node`` can be: a literal, or either branch."""
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    value = _constant(node) if node is not None else None
    return {value} if isinstance(value, str) and value else set()


def _returned_strings(tree: ast.Module) -> dict[str, set[str]]:
    """Map each function to the strings it returns, alone or in a tuple."""
    returned: dict[str, set[str]] = {}
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            found = returned.setdefault(function.name, set())
            for node in ast.walk(function):
                if isinstance(node, ast.Return) and node.value is not None:
                    values = (
                        node.value.elts
                        if isinstance(node.value, ast.Tuple)
                        else [node.value]
                    )
                    for value in values:
                        found |= _strings(value)
    return returned


def _called(node: ast.expr) -> str | None:
    """Return the name of the function ``node`` calls (awaited or not), if plain."""
    if isinstance(node, ast.Await):
        node = node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _assigned_from(function: ast.AST, name: str) -> set[str]:
    """Return the functions whose result ``name`` is assigned in ``function``."""
    calls: set[str] = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign) or (called := _called(node.value)) is None:
            continue
        for target in node.targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            if any(isinstance(n, ast.Name) and n.id == name for n in names):
                calls.add(called)
    return calls


def _error_keys(
    function: ast.AST, value: ast.expr, returned: dict[str, set[str]]
) -> set[str]:
    """Return the error keys ``errors[...] = value`` sets in ``function``.

    A literal; or a variable set from a helper's result in the same module,
    whose returned strings are then the keys.
    """
    if isinstance(value, ast.Name):
        return {
            key
            for called in _assigned_from(function, value.id)
            for key in returned.get(called, set())
        }
    return _strings(value)


def _errors(tree: ast.Module) -> set[str]:
    """Return the error keys the module's functions set in ``errors``."""
    returned = _returned_strings(tree)
    errors: set[str] = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Subscript)
                and isinstance(node.targets[0].value, ast.Name)
                and node.targets[0].value.id == "errors"
            ):
                errors |= _error_keys(function, node.value, returned)
    return errors


def _used_keys(*sources: Path) -> UsedKeys:
    """Walk source files for the keys Home Assistant translates."""
    used = UsedKeys()
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        used.error |= _errors(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                keywords = {kw.arg: kw.value for kw in node.keywords if kw.arg}
                if (options := keywords.get("menu_options")) is not None:
                    assert isinstance(options, ast.List), "menu options: a literal"
                    step = _constant(keywords["step_id"])
                    used.menu[step] = [_constant(option) for option in options.elts]
            elif isinstance(node, ast.keyword):
                kind = {
                    "step_id": used.step,
                    "reason": used.abort,
                    "progress_action": used.progress,
                    "translation_key": used.translation_key,
                }.get(node.arg or "")
                if kind is not None:
                    kind |= _strings(node.value)
            elif isinstance(node, ast.Attribute) and node.attr in IMPLIED_ABORTS:
                used.abort.add(IMPLIED_ABORTS[node.attr])
    return used


def _flow_keys() -> UsedKeys:
    """Collect what the config flow uses: the "config" section's keys."""
    return _used_keys(Path(config_flow.__file__))


def _satellite_flow_keys() -> UsedKeys:
    """Collect what the satellite subentry flow uses."""
    return _used_keys(Path(satellite_flow.__file__))


def test_strings_are_full_text() -> None:
    """Custom integrations ship full text: no empty strings, no core references."""
    for path, value in _leaves(STRINGS):
        assert isinstance(value, str), path
        assert value.strip(), path
        assert "[%key:" not in value, path


def test_code_finds_keys() -> None:
    """The source walk itself works (guards the tests below)."""
    used = _flow_keys()
    assert {"user", "reconfigure", "local_models", "zeroconf_confirm"} <= used.step
    assert "zeroconf_satellite" in used.step
    assert {"cannot_bind", "no_services"} <= used.error
    assert {"already_configured", "reconfigure_successful"} <= used.abort
    assert {"satellite_added", "satellite_needs_setup"} <= used.abort
    assert used.progress == {"install_engines", "download_models"}
    assert used.menu["engine"] == ["local", "remote", "services"]
    assert "wake_words" in used.translation_key
    # A step id chosen by a condition, and errors a helper returns.
    satellite = _satellite_flow_keys()
    assert satellite.step == {"user", "reconfigure"}
    assert satellite.error == {"cannot_connect", "not_a_satellite"}


@pytest.mark.parametrize("kind", ["step", "abort", "error", "progress"])
def test_config_flow_keys_exist_and_are_used(kind: str) -> None:
    """Every step, abort reason, error and progress action has text, and no more."""
    assert set(CONFIG[kind]) == getattr(_flow_keys(), kind)


def test_menu_options_have_labels_and_descriptions() -> None:
    """Each menu option is named and explained."""
    for step, options in _flow_keys().menu.items():
        assert set(CONFIG["step"][step]["menu_options"]) == set(options), step
        assert set(CONFIG["step"][step]["menu_option_descriptions"]) == set(options)


def test_steps_have_titles() -> None:
    """Every step the user sees has a title."""
    for step, strings in CONFIG["step"].items():
        assert "title" in strings, step


@pytest.mark.parametrize(("step", "schema"), STEP_SCHEMAS.items())
def test_form_fields_have_labels(step: str, schema: probatio.Schema) -> None:
    """Every field of a fixed form has a label and a description."""
    strings = CONFIG["step"][step]
    fields = {str(key) for key in schema.schema}
    assert set(strings["data"]) == fields
    assert set(strings["data_description"]) == fields


def test_translation_keys_exist() -> None:
    """Every translation_key (entities, exceptions, selectors) has text somewhere."""
    defined = {
        path.split(".")[-2] for path, _ in _leaves(STRINGS) if path.count(".") >= 2
    }
    defined |= {
        path.split(".")[-3] for path, _ in _leaves(STRINGS) if path.count(".") >= 3
    }
    for key in _used_keys(*PACKAGE.rglob("*.py")).translation_key:
        assert key in defined, f"translation_key {key} has no text"


def test_wake_word_options_have_labels() -> None:
    """The wake word select's options are all labelled."""
    options = STRINGS["selector"]["wake_words"]["options"]
    assert set(options) == set(config_flow.MICRO_WAKE_WORDS)


def test_options_flow_keys_exist_and_are_used() -> None:
    """The options flow's steps and errors have text, and no more."""
    used = _used_keys(Path(options_flow.__file__))
    assert used.step == {"init"}
    assert set(STRINGS["options"]["step"]) == used.step
    assert set(STRINGS["options"]["error"]) == used.error
    strings = STRINGS["options"]["step"]["init"]
    fields = {str(key) for key in options_flow.STEP_OPTIONS_SCHEMA.schema}
    assert set(strings["data"]) == fields
    assert set(strings["data_description"]) == fields


def test_subentry_types_have_strings() -> None:
    """Each subentry type is named, and its "add" button labelled."""
    types = config_flow.PrivateVoiceConfigFlow.async_get_supported_subentry_types(
        MockConfigEntry(domain=DOMAIN)
    )
    assert set(SUBENTRIES) == set(types)
    for strings in SUBENTRIES.values():
        assert strings["entry_type"]
        assert set(strings["initiate_flow"]) == {"user"}


@pytest.mark.parametrize("kind", ["step", "abort", "error"])
def test_satellite_flow_keys_exist_and_are_used(kind: str) -> None:
    """The satellite flow's steps, abort reasons and errors have text, and no more."""
    assert set(SUBENTRIES["satellite"][kind]) == getattr(_satellite_flow_keys(), kind)


@pytest.mark.parametrize(("step", "schema"), SATELLITE_STEP_SCHEMAS.items())
def test_satellite_form_fields_have_labels(step: str, schema: probatio.Schema) -> None:
    """Every field of the satellite forms has a label, a description and a title."""
    strings = SUBENTRIES["satellite"]["step"][step]
    fields = {str(key) for key in schema.schema}
    assert strings["title"]
    assert set(strings["data"]) == fields
    assert set(strings["data_description"]) == fields
