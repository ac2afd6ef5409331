"""Strict YAML → frozen dataclass loading with environment overrides.

Every service declares its config as frozen dataclasses; `load_config` fills them from a YAML file,
rejects unknown keys and wrong types with one line naming the file and the field, then applies
environment overrides named after the field path: `kafka.bootstrap` ← `NIDS_KAFKA_BOOTSTRAP`.
librdkafka settings stay a plain dict passed through verbatim, so SASL/SSL need no code.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from nids_common.errors import ConfigError

T = TypeVar("T")

ENV_PREFIX = "NIDS"
LibrdkafkaValue = str | int | float | bool
_SECRET_MARKERS = ("password", "secret", "sasl.oauthbearer.config", "key.pem", "token")


@dataclasses.dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = "127.0.0.1:9092"
    # Passed verbatim to librdkafka (security.protocol, sasl.*, ssl.*, linger.ms, …).
    librdkafka: Mapping[str, LibrdkafkaValue] = dataclasses.field(default_factory=dict)

    def client_config(self, **overrides: LibrdkafkaValue) -> dict[str, LibrdkafkaValue]:
        return {"bootstrap.servers": self.bootstrap, **self.librdkafka, **overrides}


@dataclasses.dataclass(frozen=True)
class Topics:
    flows: str = "nids.flows"
    alerts: str = "nids.alerts"
    dead_letter: str = "nids.flows.dlq"
    verdicts: str = "nids.verdicts"


def load_config(cls: type[T], path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> T:
    """Load `path` into `cls`, then apply `NIDS_*` overrides from `env` (os.environ by default)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(raw).__name__}")
    config = _build(cls, raw, str(path), "")
    return apply_env_overrides(config, os.environ if env is None else env)


def apply_env_overrides(config: T, env: Mapping[str, str]) -> T:
    return _override(config, env, ENV_PREFIX, "")


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
            out[field.name] = list(value)
        else:
            out[field.name] = value
    return out


def describe_json(config: Any) -> str:
    return json.dumps(describe(config), sort_keys=True)


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def _build(cls: type[T], raw: dict[str, Any], source: str, prefix: str) -> T:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{source}: field {prefix}{key}: unknown key (expected one of: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in raw:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: field {prefix}{field.name}: required but missing")
            continue
        values[field.name] = _coerce(hints[field.name], raw[field.name], source, f"{prefix}{field.name}")
    instance = cls(**values)
    _validate(instance, source, prefix)
    return instance


def _validate(instance: Any, source: str, prefix: str) -> None:
    check = getattr(instance, "validate", None)
    if check is None:
        return
    try:
        check()
    except ValueError as exc:
        raise ConfigError(f"{source}: field {prefix}{exc}") from None


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _coerce(hint: Any, value: Any, source: str, field: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: field {field}: expected a mapping, got {type(value).__name__}")
        return _build(hint, value, source, f"{field}.")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, source, field)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: field {field}: expected {' or '.join(_type_name(a) for a in args)}, got {type(value).__name__} {value!r}")
    if origin in (collections.abc.Mapping, dict) or hint is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: field {field}: expected a mapping, got {type(value).__name__}")
        key_hint, value_hint = typing.get_args(hint) or (str, Any)
        return types.MappingProxyType(
            {str(k): _coerce(value_hint, v, source, f"{field}.{k}") for k, v in value.items()}
        )
    if origin is tuple:
        (item_hint, *_rest) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: field {field}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(item_hint, v, source, f"{field}[{i}]") for i, v in enumerate(value))
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: field {field}: expected true or false, got {type(value).__name__} {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: field {field}: expected an integer, got {type(value).__name__} {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{source}: field {field}: expected a number, got {type(value).__name__} {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{source}: field {field}: expected a string, got {type(value).__name__} {value!r}")
    if hint is Path:
        if isinstance(value, str) and value:
            return Path(value)
        raise ConfigError(f"{source}: field {field}: expected a path string, got {type(value).__name__} {value!r}")
    raise ConfigError(f"{source}: field {field}: unsupported type {_type_name(hint)}")


def _parse_env(hint: Any, text: str, name: str) -> Any:
    """Environment values are strings; read them as YAML scalars so `5`, `true`, `1.5` get their types."""
    if hint is str:
        return text
    if hint is Path:
        return text
    if typing.get_origin(hint) in (collections.abc.Mapping, dict):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"environment {name}: expected a JSON object: {exc.msg}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _override(config: T, env: Mapping[str, str], prefix: str, field_prefix: str) -> T:
    hints = typing.get_type_hints(type(config))
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        name = f"{prefix}_{field.name.upper()}"
        hint = hints[field.name]
        current = getattr(config, field.name)
        if dataclasses.is_dataclass(hint):
            updated = _override(current, env, name, f"{field_prefix}{field.name}.")
            if updated is not current:
                changes[field.name] = updated
        elif name in env:
            raw = _parse_env(hint, env[name], name)
            value = _coerce(hint, raw, f"environment {name}", f"{field_prefix}{field.name}")
            if isinstance(current, Mapping) and isinstance(value, Mapping):
                value = types.MappingProxyType({**current, **value})
            changes[field.name] = value
    if not changes:
        return config
    updated = dataclasses.replace(config, **changes)
    _validate(updated, "environment", field_prefix)
    return updated
