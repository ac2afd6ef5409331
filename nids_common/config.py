"""Strict YAML → frozen dataclass loading with environment overrides.

Every service declares its config as frozen dataclasses that check their own values in
`__post_init__`; `load_config` fills them from a YAML file with `msgspec.convert` (types, nesting,
the path of a wrong field), rejects unknown keys, then applies environment overrides named after the
field path: `kafka.bootstrap` ← `NIDS_KAFKA_BOOTSTRAP`. librdkafka settings stay a plain mapping
passed through verbatim, so SASL/SSL need no code. Every error is one line naming the file or the
variable, the field and the reason.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import types
import typing
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec
import yaml

from nids_common.contract import Topics
from nids_common.errors import ConfigError

__all__ = ["KafkaSettings", "Topics", "describe", "describe_json", "load_config"]

T = TypeVar("T")

ENV_PREFIX = "NIDS"
LibrdkafkaValue = str | int | float | bool
_SECRET_MARKERS = ("password", "secret", "sasl.oauthbearer.config", "key.pem", "token")
_ERROR_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_FIELD_FIRST = re.compile(r"^(?P<field>[a-z_]+): (?P<message>.*)$", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = "127.0.0.1:9092"
    # Passed verbatim to librdkafka (security.protocol, sasl.*, ssl.*, linger.ms, …).
    librdkafka: Mapping[str, LibrdkafkaValue] = dataclasses.field(default_factory=dict)

    def client_config(self, **overrides: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, **self.librdkafka, **overrides}


def load_config(cls: type[T], path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> T:
    """Load `path` into `cls`, then apply `NIDS_*` overrides from `env` (os.environ by default)."""
    path = Path(path)
    raw = _read_yaml(path)
    _reject_unknown_keys(cls, raw, str(path), "")
    config = _convert(cls, raw, lambda _field: str(path))
    overrides = _environment_overrides(cls, os.environ if env is None else env)
    if not overrides:
        return config
    merged = copy.deepcopy(raw)
    origins: dict[str, str] = {}
    for field_path, name, value in overrides:
        _set_path(merged, field_path, value)
        origins[".".join(field_path)] = f"environment {name}"

    def origin(field: str) -> str:
        for candidate, name in origins.items():
            if field == candidate or field.startswith(candidate + ".") or field.startswith(candidate + "["):
                return name
        return str(path)

    return _convert(cls, merged, origin)


def describe(config: Any) -> dict[str, Any]:
    """The effective config as a plain dict with secrets masked, for the start-up log line."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            out[field.name] = describe(value)
        elif isinstance(value, Mapping):
            out[field.name] = {k: ("***" if _is_secret(k) else v) for k, v in value.items()}
        elif isinstance(value, Path):
            out[field.name] = str(value)
        elif isinstance(value, tuple):
            # Items may be structs with datetimes (nids-incidents' suppression rules).
            out[field.name] = msgspec.to_builtins(list(value))
        else:
            out[field.name] = value
    return out


def describe_json(config: Any) -> str:
    return json.dumps(describe(config), sort_keys=True)


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(raw).__name__}")
    return raw


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a key written twice in one mapping is an error: YAML's rule, which
    PyYAML does not enforce (it keeps the last, so the first setting is silently ignored)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader's own check names it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _decode_hook(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str) and value:
        return Path(value)
    raise NotImplementedError


def _convert(cls: type[T], raw: dict[str, Any], source_of: typing.Callable[[str], str]) -> T:
    try:
        config = msgspec.convert(raw, cls, dec_hook=_decode_hook)
    except msgspec.ValidationError as exc:
        field, message = _split_error(str(exc))
        choices = _choices(cls, field)
        if choices and message.startswith("Invalid enum value"):
            message += f" (expected one of: {', '.join(map(str, choices))})"
        where = f": field {field}" if field else ""
        raise ConfigError(f"{source_of(field)}{where}: {message}") from None
    return typing.cast(T, _freeze_mappings(config))


def _split_error(text: str) -> tuple[str, str]:
    """msgspec's 'Expected `int`, got `str` - at `$.detector.max_records`' → (field path, reason).
    A `__post_init__` check names its own field first ('max_records: must be >= 1')."""
    match = _ERROR_AT.match(text.replace("\n", " "))
    message, path = (match.group("message"), (match.group("path") or "").lstrip(".")) if match else (text, "")
    own = _FIELD_FIRST.match(message)
    if own:
        path = f"{path}.{own.group('field')}" if path else own.group("field")
        message = own.group("message")
    return path, message


def _choices(cls: Any, field: str) -> tuple[Any, ...]:
    """The values a `Literal` field, or each item of a tuple of them, may take; () for other fields."""
    hint: Any = cls
    for name in re.sub(r"\[\d+\]", "", field).split("."):
        if not dataclasses.is_dataclass(hint):
            return ()
        hint = typing.get_type_hints(hint).get(name)
    while typing.get_origin(hint) is tuple:
        hint = typing.get_args(hint)[0]
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()


def _freeze_mappings(config: Any) -> Any:
    """Frozen configs hold read-only mappings, so no service can change a shared setting in place."""
    changes = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            changes[field.name] = _freeze_mappings(value)
        elif isinstance(value, dict):
            changes[field.name] = types.MappingProxyType(value)
    return dataclasses.replace(config, **changes) if changes else config


def _nested(cls: Any) -> dict[str, Any]:
    """The fields of a config class that are config classes themselves, with their types."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def _reject_unknown_keys(cls: Any, raw: Any, source: str, prefix: str) -> None:
    # msgspec ignores unknown keys of a dataclass; a typo in a config must not be silently ignored.
    if not isinstance(raw, dict):
        return
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"{source}: field {prefix}{key}: unknown key (expected one of: {', '.join(sorted(known))})"
            )
    for name, hint in _nested(cls).items():
        _reject_unknown_keys(hint, raw.get(name), source, f"{prefix}{name}.")


def _environment_overrides(
    cls: Any, env: Mapping[str, str], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], str, Any]]:
    """(field path, variable, parsed value) for every `NIDS_<PATH>` set in `env`."""
    found = []
    hints = typing.get_type_hints(cls)
    nested = _nested(cls)
    for field in dataclasses.fields(cls):
        path = (*prefix, field.name)
        if field.name in nested:
            found.extend(_environment_overrides(nested[field.name], env, path))
            continue
        name = "_".join((ENV_PREFIX, *path)).upper()
        if name in env:
            found.append((path, name, _parse_env(hints[field.name], env[name], name)))
    return found


def _parse_env(hint: Any, text: str, name: str) -> Any:
    """Environment values are strings; read them as YAML scalars so `5`, `true`, `1.5` get their types,
    and a mapping as a JSON object merged into the file's."""
    if hint in (str, Path) or typing.get_origin(hint) is Literal:
        return text
    if typing.get_origin(hint) in (Mapping, dict):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"environment {name}: expected a JSON object: {exc.msg}") from None
        if not isinstance(value, dict):
            raise ConfigError(f"environment {name}: expected a JSON object, got {type(value).__name__}")
        return _MergeMapping(value)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


class _MergeMapping(dict[str, Any]):
    """An override that merges into the file's mapping instead of replacing it."""


def _set_path(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = raw
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    current = node.get(path[-1])
    if isinstance(value, _MergeMapping):
        value = {**(current if isinstance(current, dict) else {}), **value}
    node[path[-1]] = value
