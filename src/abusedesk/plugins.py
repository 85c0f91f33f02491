"""The built-in plugins, one tuple per stage, and the loader that also reads entry points.

Built-ins are listed here as ``"module:Class"``; third-party plugins come from the entry point groups
``abusedesk.parsers``, ``abusedesk.detectors`` and ``abusedesk.adapters`` through the same loader. Two plugins with
one name fail at start-up with a ConfigError naming both.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import Any, TypeVar

from abusedesk.domain.errors import ConfigError
from abusedesk.parsers.base import Parser, Report

BUILTIN_PARSERS: tuple[str, ...] = (
    "abusedesk.parsers.arf:ArfParser",
    "abusedesk.parsers.xarf_legacy:XarfLegacyParser",
    "abusedesk.parsers.xarf:XarfParser",
    "abusedesk.parsers.spamcop:SpamcopParser",
    "abusedesk.parsers.honeypot:HoneypotParser",
    "abusedesk.parsers.urlreport:UrlReportParser",
    "abusedesk.parsers.freetext:FreetextParser",
    "abusedesk.parsers.shadowserver:ShadowserverParser",
    "abusedesk.parsers.abusehub:AbusehubParser",
    "abusedesk.parsers.acns:AcnsParser",
    "abusedesk.parsers.dmca:DmcaParser",
    "abusedesk.parsers.intelmq:IntelmqParser",
    "abusedesk.parsers.listfeeds:ListFeedParser",
)

BUILTIN_DETECTORS: tuple[str, ...] = ("abusedesk.detectors.reported:ReportedAbuseDetector",)

BUILTIN_ADAPTERS: tuple[str, ...] = (
    "abusedesk.actions.smtp:EmailNotifyAction",
    "abusedesk.actions.smtp:ConsoleNotifyAction",
    "abusedesk.actions.smtp:NullNotifyAction",
    "abusedesk.actions.webhook:ControlPlaneWebhookAction",
    "abusedesk.actions.webhook:ConsoleControlAction",
    "abusedesk.actions.webhook:NullControlAction",
    "abusedesk.actions.export:ReportOfficialsAction",
)

T = TypeVar("T")


def _import(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"plugin {spec!r} cannot be loaded: {exc}") from exc


def load_classes(builtins: tuple[str, ...], group: str, base: type[T]) -> list[type[T]]:
    """Built-ins, then entry points of ``group``; each must subclass ``base`` and have a unique ``name``."""
    classes: list[tuple[str, type[T]]] = [(spec, _import(spec)) for spec in builtins]
    for ep in entry_points(group=group):
        classes.append((f"{ep.module}:{ep.attr} (entry point {ep.name})", ep.load()))
    seen: dict[str, str] = {}
    out: list[type[T]] = []
    for origin, cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ConfigError(f"plugin {origin} is not a {base.__name__}")
        name = getattr(cls, "name", None)
        if not name:
            raise ConfigError(f"plugin {origin} has no name")
        if name in seen:
            raise ConfigError(f"two plugins are named {name!r}: {seen[name]} and {origin}")
        seen[name] = origin
        out.append(cls)
    return out


@cache
def parser_classes() -> tuple[type[Parser], ...]:
    classes = load_classes(BUILTIN_PARSERS, "abusedesk.parsers", Parser)  # type: ignore[type-abstract]
    return tuple(sorted(classes, key=lambda c: (c.priority, c.name)))


def load_parsers() -> list[Parser]:
    """One instance of every parser, in sniffing order (lowest priority first)."""
    return [cls() for cls in parser_classes()]


def sniff(report: Report, parsers: list[Parser] | None = None) -> Parser | None:
    """The first parser that recognises the input, or None."""
    for parser in parsers if parsers is not None else load_parsers():
        if parser.recognises(report):
            return parser
    return None
