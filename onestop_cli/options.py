"""Command-line flags made from the settings classes, so flags and variables cannot drift apart.

A service command names the settings fields it exposes; each becomes a flag
(``clock`` → ``--clock``) that falls back to its environment variable
(``ONESTOP_CLOCK``), shows that variable in ``--help`` and takes its help text,
its choices and its type from the field. The command then receives one
validated settings object: the flags given on the command line over the
environment over the defaults, checked by the same pydantic validators as ever.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Literal, Optional, TypeVar

import typer
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

F = TypeVar("F", bound=Callable[..., Any])
SCALARS = (bool, int, float, str, Path)


def env_var(settings_class: type[BaseSettings], field: str) -> str:
    return f"{settings_class.model_config.get('env_prefix', '')}{field}".upper()


def _plain_type(annotation: Any) -> Any:
    """The flag's Python type: Optional[...] is unwrapped; Literal fields keep their choices."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _plain_type(args[0])
    if origin is Literal or annotation in SCALARS:
        return annotation
    if annotation is date:  # given as YYYY-MM-DD; the settings class parses and validates it
        return str
    raise TypeError(f"no flag for a setting of type {annotation!r}")


def _default_shown(info: Any) -> str:
    if info.default_factory is not None:
        return ""
    return "" if info.default in (None, "") else f" (default: {info.default})"


def setting_parameter(settings_class: type[BaseSettings], field: str) -> inspect.Parameter:
    """The keyword parameter typer turns into the flag of one settings field."""
    info = settings_class.model_fields[field]
    if SecretStr in (info.annotation, *typing.get_args(info.annotation)):
        raise TypeError(f"{field} is a secret: it is read from the environment only")
    python_type = _plain_type(info.annotation)
    flag = "--" + field.replace("_", "-")
    decls = [f"{flag}/--no-{field.replace('_', '-')}"] if python_type is bool else [flag]
    option = typer.Option(None, *decls, envvar=env_var(settings_class, field), show_envvar=True,
                          help=(info.description or field) + _default_shown(info), show_default=False, rich_help_panel="Settings")
    return inspect.Parameter(field, inspect.Parameter.KEYWORD_ONLY, default=option,
                             annotation=Optional[python_type])


def settings_from(settings_class: type[BaseSettings], fields: tuple[str, ...], given: dict[str, Any]) -> Any:
    """A settings object from the environment, with the flags given on the command line on top."""
    overrides = {name: given[name] for name in fields if given.get(name) is not None}
    try:
        return settings_class(**overrides)
    except ValidationError as exc:
        raise typer.BadParameter(invalid_settings(settings_class, exc)) from None


def invalid_settings(settings_class: type[BaseSettings], exc: ValidationError) -> str:
    """One line per invalid setting, naming its flag and its variable."""
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        problems.append(f"--{name.replace('_', '-')} / {env_var(settings_class, name)}: {error['msg']}")
    return "invalid settings: " + "; ".join(problems)


def settings_options(settings_class: type[BaseSettings], *fields: str, into: str = "settings") -> Callable[[F], F]:
    """Give a command one flag per settings field; it receives the validated settings as ``into``.

    ``into`` names the command's own parameter that takes the settings object; it is not a flag.
    """
    unknown = [f for f in fields if f not in settings_class.model_fields]
    if unknown:
        raise KeyError(f"{settings_class.__name__} has no fields {unknown}")

    def decorate(command: F) -> F:
        own = [p for p in inspect.signature(command).parameters.values() if p.name != into]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name, None) for name in fields}
            kwargs[into] = settings_from(settings_class, fields, given)
            return command(*args, **kwargs)

        extra = [setting_parameter(settings_class, f) for f in fields]
        wrapper.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
