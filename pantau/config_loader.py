"""Load ``PantauConfig`` from YAML plus ``PANTAU__...`` environment overrides.

Every value remembers the YAML line it came from, so a rejected value is
reported as ``FILE:LINE: location: what was expected, what arrived``. Values
of text fields (names, URLs, passwords, times) are taken verbatim from the
YAML source, which avoids YAML 1.1 surprises such as ``06:00`` reading as the
number 360 or ``password: 0123`` as 83.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails
from yaml.constructor import SafeConstructor

from pantau.config import (
    DUPLICATE_CAMERA_ID,
    CameraConfig,
    PantauConfig,
    RegionConfig,
)
from pantau.redact import looks_secret, redact_url

__all__ = [
    "ENV_PREFIX",
    "ConfigError",
    "ConfigProblem",
    "default_demo_config",
    "load_config",
]

ENV_PREFIX = "PANTAU__"
_ENV_SEPARATOR = "__"

_Key = str | int
_Loc = tuple[_Key, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COMPARISONS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}
_LENGTHS = {
    "string_too_short": ("min_length", "expected at least {} characters"),
    "string_too_long": ("max_length", "expected at most {} characters"),
    "too_short": ("min_length", "expected at least {} items"),
    "too_long": ("max_length", "expected at most {} items"),
}
_SHOWN_CHARS = 80


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a configuration.

    ``location`` is a dotted path such as ``cameras[2].sample_interval_s``,
    ``line`` the 1-based YAML line of that key (or of its nearest parent in
    the file), None when the value came from the environment. ``label`` is
    the location as shown to people, with the camera id when there is one.
    """

    location: str
    line: int | None
    message: str
    label: str = ""

    def __str__(self) -> str:
        where = self.label or self.location
        return f"{where}: {self.message}" if where else self.message


class ConfigError(ValueError):
    """The configuration could not be loaded; ``problems`` says why."""

    def __init__(self, problems: list[ConfigProblem], path: Path | None) -> None:
        self.problems = problems
        self.path = path
        super().__init__(str(self))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[Any, ...]]:
        return ConfigError, (self.problems, self.path)

    def lines(self) -> list[str]:
        """One ``FILE:LINE: location: message`` line per problem."""
        source = str(self.path) if self.path is not None else "<environment>"
        lines = []
        for problem in self.problems:
            prefix = source if problem.line is None else f"{source}:{problem.line}"
            lines.append(f"{prefix}: {problem}")
        return lines

    def __str__(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        return "\n".join([f"invalid configuration ({count} {noun}):", *self.lines()])


def load_config(
    path: Path | None, environ: Mapping[str, str] | None = None
) -> PantauConfig:
    """Read ``path`` (None: defaults only), apply overrides, validate.

    ``environ`` defaults to ``os.environ``; variables named
    ``PANTAU__SECTION__FIELD`` override the file, e.g.
    ``PANTAU__KAFKA__BOOTSTRAP_SERVERS=10.0.0.5:9092`` or
    ``PANTAU__CAMERAS__0__SOURCE_URL=rtsp://...``. Relative ``state_dir`` and
    ``cache_dir`` are taken relative to the file's directory (or the working
    directory without a file). Raises ``ConfigError``.
    """
    environ = os.environ if environ is None else environ
    reader = _Reader()
    data: dict[str, Any] = {}

    if path is not None:
        text = _read_text(path)
        data = reader.read_document(text)
    env_paths = _apply_environment(data, environ, reader)
    if reader.problems:
        raise ConfigError(_ordered(reader.problems), path)

    try:
        config = PantauConfig.model_validate(data)
    except ValidationError as error:
        problems = [
            _problem(details, data, reader.lines, env_paths)
            for details in error.errors(include_url=False)
            if details["type"] != DUPLICATE_CAMERA_ID
        ]
        problems += _duplicate_ids(data, reader.lines, env_paths)
        raise ConfigError(_ordered(problems), path) from None

    base = path.parent.absolute() if path is not None else Path.cwd()
    return config.model_copy(
        update={
            "state_dir": _under(base, config.state_dir),
            "cache_dir": _under(base, config.cache_dir),
        }
    )


def default_demo_config(repo_video: Path) -> PantauConfig:
    """A configuration with one looping demo camera reading ``repo_video``."""
    camera = CameraConfig(
        id="demo-vtest",
        source_url=str(repo_video),
        region=RegionConfig(city="Jakarta", kecamatan="Gambir", kelurahan="Gambir"),
        sample_interval_s=0.5,
        loop=True,
    )
    return PantauConfig(cameras=[camera])


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = (
            f"config file {str(path)!r} not found; create one with "
            "`pantau config init` or pass the path of an existing file"
        )
    except UnicodeDecodeError as error:
        message = f"expected UTF-8 text, got undecodable bytes ({error.reason})"
    except OSError as error:
        message = f"cannot read the config file: {error.strerror or error}"
    raise ConfigError([ConfigProblem("", None, message)], path)


def _under(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


# YAML reading ---------------------------------------------------------------


class _Reader:
    """Turns composed YAML nodes into plain data, noting each value's line."""

    def __init__(self) -> None:
        self.lines: dict[_Loc, int] = {}
        self.problems: list[ConfigProblem] = []
        self._constructor = SafeConstructor()

    def read_document(self, text: str) -> dict[str, Any]:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as error:
            self.problems.append(_syntax_problem(error, None))
            return {}
        if root is None:
            return {}
        if not isinstance(root, yaml.MappingNode):
            self.problems.append(
                ConfigProblem(
                    "",
                    root.start_mark.line + 1,
                    f"expected a mapping of sections at the top level, "
                    f"got {_node_kind(root)}",
                )
            )
            return {}
        data = self.read(root, (), PantauConfig)
        return data if isinstance(data, dict) else {}

    def read(self, node: yaml.Node, loc: _Loc, target: Any) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc, target)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*loc, index)] = item.start_mark.line + 1
                items.append(self.read(item, (*loc, index), _child(target, index)))
            return items
        return self._scalar(node, loc, target)

    def _mapping(self, node: yaml.MappingNode, loc: _Loc, target: Any) -> Any:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        seen_at: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                sources = (
                    value_node.value
                    if isinstance(value_node, yaml.SequenceNode)
                    else [value_node]
                )
                for source in sources:
                    value = self.read(source, loc, target)
                    if isinstance(value, dict):
                        merged = {**value, **merged}
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(
                    ConfigProblem(
                        _format_loc(loc),
                        line,
                        f"expected a plain key, got {_node_kind(key_node)}",
                    )
                )
                continue
            key = str(key_node.value)
            if key in seen_at:
                self.problems.append(
                    ConfigProblem(
                        _format_loc((*loc, key)),
                        line,
                        f"key {key!r} appears twice (lines {seen_at[key]} and "
                        f"{line}); expected it once",
                    )
                )
                continue
            seen_at[key] = line
            self.lines[(*loc, key)] = line
            result[key] = self.read(value_node, (*loc, key), _child(target, key))
        return {**merged, **result}

    def _scalar(self, node: yaml.Node, loc: _Loc, target: Any) -> Any:
        if node.tag == _NULL_TAG:
            return None
        if _is_text(target):
            return node.value
        try:
            return self._constructor.construct_object(node)
        except yaml.YAMLError as error:
            self.problems.append(_syntax_problem(error, loc, "YAML could not read"))
        except ValueError as error:
            # A timestamp-shaped value such as 2024-13-45.
            self.problems.append(
                ConfigProblem(
                    _format_loc(loc),
                    node.start_mark.line + 1,
                    f"YAML could not read {node.value!r}: {error}",
                )
            )
        return None


def _syntax_problem(
    error: yaml.YAMLError, loc: _Loc | None, what_failed: str = "YAML syntax error"
) -> ConfigProblem:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        what = "; ".join(part for part in (error.context, error.problem) if part)
    else:
        line, what = None, " ".join(str(error).split())
    return ConfigProblem(
        _format_loc(loc) if loc else "", line, f"{what_failed}: {what}"
    )


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the value {node.value!r}"


# Environment overrides -------------------------------------------------------


def _apply_environment(
    data: dict[str, Any], environ: Mapping[str, str], reader: _Reader
) -> dict[_Loc, str]:
    """Write ``PANTAU__...`` overrides into ``data``; return where each went."""
    overrides = []
    for name, raw in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        loc = _env_loc(name)
        if loc is None:
            reader.problems.append(
                ConfigProblem(
                    "",
                    None,
                    f"environment variable {name} has an empty name part; expected "
                    f"{ENV_PREFIX}SECTION__FIELD",
                )
            )
            continue
        overrides.append((loc, name, raw))

    # Shorter paths first, so PANTAU__KAFKA__X refines a whole PANTAU__KAFKA.
    env_paths: dict[_Loc, str] = {}
    for loc, name, raw in sorted(overrides, key=lambda item: (len(item[0]), item[1])):
        problem = _set_override(data, loc, name, raw)
        if problem is not None:
            reader.problems.append(
                ConfigProblem(_format_loc(loc), None, f"{problem} (from {name})")
            )
        else:
            env_paths[loc] = name
    return env_paths


def _env_loc(name: str) -> _Loc | None:
    parts = name[len(ENV_PREFIX) :].split(_ENV_SEPARATOR)
    if not all(parts):
        return None
    loc: list[_Key] = []
    target: Any = PantauConfig
    for part in parts:
        key: _Key = part.lower()
        shape = get_origin(_unwrap(target))
        if shape in (list, tuple) and part.isdigit():
            key = int(part)
        elif shape is dict:
            # librdkafka names use dots, which variable names cannot hold.
            key = part.lower().replace("_", ".")
        loc.append(key)
        target = _child(target, key)
    return tuple(loc)


def _set_override(data: dict[str, Any], loc: _Loc, name: str, raw: str) -> str | None:
    """Put the parsed ``raw`` at ``loc``; a reason when it cannot go there."""
    target = _target(loc)
    if _is_text(target):
        value: Any = None if raw == "" and _is_optional(target) else raw
    else:
        scratch = _Reader()
        try:
            node = yaml.compose(raw, Loader=yaml.SafeLoader)
        except yaml.YAMLError as error:
            reason = _syntax_problem(error, None).message
            return f"expected a YAML value, got unparsable text ({reason})"
        value = None if node is None else scratch.read(node, loc, target)
        if scratch.problems:
            return scratch.problems[0].message

    container: Any = data
    for depth, key in enumerate(loc[:-1]):
        here = _format_loc(loc[: depth + 1])
        if isinstance(key, int):
            if not isinstance(container, list) or key >= len(container):
                count = len(container) if isinstance(container, list) else 0
                return (
                    f"{here} does not exist: the file defines {count} "
                    f"{_format_loc(loc[:depth]) or 'entries'}; entries can be "
                    "changed from the environment but not added"
                )
            container = container[key]
            continue
        if not isinstance(container, dict):
            return f"cannot set {_format_loc(loc)}: {here} is not a mapping"
        if container.get(key) is None:
            container[key] = {}
        container = container[key]

    last = loc[-1]
    if isinstance(last, int):
        if not isinstance(container, list) or last >= len(container):
            return f"{_format_loc(loc)} does not exist in the file"
        container[last] = value
    elif isinstance(container, dict):
        container[last] = value
    else:
        return f"cannot set {_format_loc(loc)}: its parent is not a mapping"
    return None


# Schema walking ----------------------------------------------------------------


def _unwrap(target: Any) -> Any:
    """Strip ``Annotated`` and ``| None`` from a type; unions stay unions."""
    while True:
        origin = get_origin(target)
        if origin is Annotated:
            target = get_args(target)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(target) if arg is not type(None)]
            if len(members) != 1:
                return target
            target = members[0]
        else:
            return target


def _is_optional(target: Any) -> bool:
    origin = get_origin(target)
    return origin in (Union, types.UnionType) and type(None) in get_args(target)


def _is_model(target: Any) -> bool:
    return (
        get_origin(target) is None
        and isinstance(target, type)
        and issubclass(target, BaseModel)
    )


def _child(target: Any, key: _Key) -> Any:
    """The type expected at ``key`` inside a value of type ``target``."""
    target = _unwrap(target)
    if _is_model(target):
        field = target.model_fields.get(key) if isinstance(key, str) else None
        return field.annotation if field is not None else None
    origin, args = get_origin(target), get_args(target)
    if origin is list and isinstance(key, int):
        return args[0]
    if origin is tuple and isinstance(key, int):
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return args[key] if key < len(args) else None
    if origin is dict and isinstance(key, str):
        return args[1]
    return None


def _target(loc: _Loc) -> Any:
    target: Any = PantauConfig
    for key in loc:
        target = _child(target, key)
    return target


def _is_text(target: Any) -> bool:
    """Whether values for ``target`` should be kept as the text written."""
    target = _unwrap(target)
    origin = get_origin(target)
    if origin in (Union, types.UnionType):
        return all(_is_text(arg) for arg in get_args(target))
    if origin is Literal:
        return all(isinstance(arg, str) for arg in get_args(target))
    return target in (str, SecretStr, Path, time)


# Validation errors -------------------------------------------------------------


def _problem(
    details: ErrorDetails,
    data: Mapping[str, Any],
    lines: Mapping[_Loc, int],
    env_paths: Mapping[_Loc, str],
) -> ConfigProblem:
    loc = _clean_loc(tuple(details["loc"]))
    return _placed(loc, _message(details, loc), data, lines, env_paths)


def _placed(
    loc: _Loc,
    message: str,
    data: Mapping[str, Any],
    lines: Mapping[_Loc, int],
    env_paths: Mapping[_Loc, str],
) -> ConfigProblem:
    """A problem at ``loc`` with its YAML line or its environment variable."""
    location = _format_loc(loc)
    label = _label(loc, data)

    from_env = [name for path, name in env_paths.items() if loc[: len(path)] == path]
    if from_env:
        return ConfigProblem(
            location, None, f"{message} (from environment {from_env[0]})", label
        )

    line = next(
        (
            lines[loc[:depth]]
            for depth in range(len(loc), 0, -1)
            if loc[:depth] in lines
        ),
        None,
    )
    inside = sorted(name for path, name in env_paths.items() if path[: len(loc)] == loc)
    if line is None and inside:
        message += f" (involves environment {', '.join(inside)})"
    return ConfigProblem(location, line, message, label)


def _duplicate_ids(
    data: Mapping[str, Any],
    lines: Mapping[_Loc, int],
    env_paths: Mapping[_Loc, str],
) -> list[ConfigProblem]:
    """Repeated camera ids, each reported at the repeating entry's ``id``.

    The model finds these too, but only once every camera is valid and only
    at ``cameras``; this finds them alongside other problems, on their line.
    """
    cameras = data.get("cameras")
    if not isinstance(cameras, list):
        return []
    problems = []
    first_index: dict[str, int] = {}
    for index, camera in enumerate(cameras):
        camera_id = camera.get("id") if isinstance(camera, dict) else None
        if not isinstance(camera_id, str):
            continue
        if camera_id in first_index:
            message = (
                f"camera id {camera_id!r} is already used by "
                f"cameras[{first_index[camera_id]}]; expected every id to be unique"
            )
            problems.append(
                _placed(("cameras", index, "id"), message, data, lines, env_paths)
            )
        else:
            first_index[camera_id] = index
    return problems


def _clean_loc(loc: _Loc) -> _Loc:
    """Drop pydantic's union-member names, which are not configuration keys."""
    cleaned: list[_Key] = []
    target: Any = PantauConfig
    for key in loc:
        shape = _unwrap(target)
        if isinstance(key, str) and get_origin(shape) in (Union, types.UnionType):
            continue
        cleaned.append(key)
        target = _child(target, key)
    return tuple(cleaned)


def _message(details: ErrorDetails, loc: _Loc) -> str:
    kind = details["type"]
    ctx = details.get("ctx") or {}

    if kind == "extra_forbidden":
        return _unknown_key_message(loc)
    if kind == "missing":
        return "required key is missing"
    if kind in ("value_error", "assertion_error"):
        # Our validators write complete, already redacted sentences.
        return str(ctx.get("error", details["msg"]))

    if kind in _COMPARISONS:
        symbol, bound_name = _COMPARISONS[kind]
        bound = ctx.get(bound_name)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        expected = f"must be {symbol} {bound}"
    elif kind in _LENGTHS:
        bound_name, template = _LENGTHS[kind]
        expected = template.format(ctx.get(bound_name))
    elif kind == "string_pattern_mismatch":
        expected = f"must match the pattern {ctx.get('pattern')}"
    else:
        expected = details["msg"]
        for prefix, replacement in (
            ("Input should be", "expected"),
            ("Input", "value"),
        ):
            if expected.startswith(prefix):
                expected = replacement + expected[len(prefix) :]
                break
    return f"{expected}, got {_shown(details.get('input'), _is_secret(loc))}"


def _unknown_key_message(loc: _Loc) -> str:
    parent = _unwrap(_target(loc[:-1]))
    key = str(loc[-1]) if loc else ""
    if not _is_model(parent):
        return "unknown key"
    known = list(parent.model_fields)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {key!r}; {hint}expected one of: {', '.join(known)}"


def _is_secret(loc: _Loc) -> bool:
    if any(isinstance(key, str) and looks_secret(key) for key in loc):
        return True
    target = _unwrap(_target(loc))
    members = get_args(target) if get_origin(target) else (target,)
    return SecretStr in members


def _shown(value: Any, secret: bool) -> str:
    """How a rejected input appears in a message: short, never a secret."""
    if secret:
        return "a value that is not shown because it is secret"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        text = redact_url(value)
        if len(text) > _SHOWN_CHARS:
            text = text[: _SHOWN_CHARS - 3] + "..."
        return repr(text)
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def _format_loc(loc: _Loc) -> str:
    text = ""
    for key in loc:
        if isinstance(key, int):
            text += f"[{key}]"
        elif _IDENTIFIER.match(key):
            text += f".{key}" if text else key
        else:
            text += f"[{key!r}]"
    return text


def _label(loc: _Loc, data: Mapping[str, Any]) -> str:
    """``_format_loc`` plus the camera id: ``cameras[2] ('jkt-012').field``."""
    location = _format_loc(loc)
    if len(loc) < 2 or loc[0] != "cameras" or not isinstance(loc[1], int):
        return location
    cameras = data.get("cameras")
    if not isinstance(cameras, list) or loc[1] >= len(cameras):
        return location
    camera = cameras[loc[1]]
    camera_id = camera.get("id") if isinstance(camera, dict) else None
    if not isinstance(camera_id, str):
        return location
    head = f"cameras[{loc[1]}] ({camera_id!r})"
    return head + location[len(_format_loc(loc[:2])) :]


def _ordered(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    unique = list(dict.fromkeys(problems))
    return sorted(
        unique,
        key=lambda problem: (
            problem.line is None,
            problem.line or 0,
            problem.location,
        ),
    )
