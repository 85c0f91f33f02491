"""The built-in plugins, one tuple per stage, and the loader that also reads entry points.

Built-ins are listed here as ``"module:Class"``; third-party plugins come from the entry point groups
``abusedesk.parsers``, ``abusedesk.detectors`` and ``abusedesk.adapters`` through the same loader. Two plugins with
one name fail at start-up with a ConfigError naming both.

An operator tunes a plugin through the settings: ``[parsers.<name>]`` / ``[detectors.<name>]`` tables in the TOML
file, or ``ABUSEDESK_PARSERS__<NAME>__<PARAM>``. ``check_plugin_settings`` validates them against each plugin's
pydantic ``Params`` (the CLI calls it at start-up), and ``build_parsers`` / ``build_detectors`` make the instances
with them. An unknown plugin or parameter, or a bad value, is a ConfigError naming the key.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from abusedesk.detectors.base import ClauseMap, Detector
from abusedesk.domain.errors import ConfigError
from abusedesk.parsers.base import Parser, Report

if TYPE_CHECKING:
    from abusedesk.actions.base import Adapter
    from abusedesk.config import Settings

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
    "abusedesk.parsers.weblog:WeblogParser",
    "abusedesk.parsers.signup:SignupParser",
)

BUILTIN_DETECTORS: tuple[str, ...] = (
    "abusedesk.detectors.reported:ReportedAbuseDetector",
    # flow telemetry (``consumes = "flows"``): run by the flows stage over closed flow files
    "abusedesk.detectors.vertical_scan:VerticalScanDetector",
    "abusedesk.detectors.horizontal_scan:HorizontalScanDetector",
    "abusedesk.detectors.flood:FloodDetector",
    "abusedesk.detectors.bruteforce:BruteforceDetector",
    "abusedesk.detectors.smtp_burst:SmtpBurstDetector",
    "abusedesk.detectors.spoofed_source:SpoofedSourceDetector",
    "abusedesk.detectors.load_test:LoadTestDetector",
    "abusedesk.detectors.crawler_agent:CrawlerAgentDetector",
    "abusedesk.detectors.robots_ignored:RobotsIgnoredDetector",
    "abusedesk.detectors.crawl_delay:CrawlDelayIgnoredDetector",
    "abusedesk.detectors.mirroring:MirroringDetector",
    "abusedesk.detectors.signup:SignupDetector",
)

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
def adapter_classes() -> tuple[type[Adapter], ...]:
    """Every adapter: the built-ins and the ``abusedesk.adapters`` entry points (names unique)."""
    from abusedesk.actions.base import Adapter

    return tuple(load_classes(BUILTIN_ADAPTERS, "abusedesk.adapters", Adapter))  # type: ignore[type-abstract]


@cache
def parser_classes() -> tuple[type[Parser], ...]:
    classes = load_classes(BUILTIN_PARSERS, "abusedesk.parsers", Parser)  # type: ignore[type-abstract]
    return tuple(sorted(classes, key=lambda c: (c.priority, c.name)))


@cache
def detector_classes() -> tuple[type[Detector], ...]:
    return tuple(load_classes(BUILTIN_DETECTORS, "abusedesk.detectors", Detector))  # type: ignore[type-abstract]


def load_parsers(settings: Settings | None = None) -> list[Parser]:
    """One instance of every parser, in sniffing order (lowest priority first), with the settings' params."""
    configured = settings.parsers if settings is not None else {}
    _check_names("parsers", configured, parser_classes())
    return [cls(plugin_params("parsers", cls, configured.get(cls.name, {}))) for cls in parser_classes()]


#: the same thing under the name the stages use
build_parsers = load_parsers


def build_detectors(policy: ClauseMap, settings: Settings, consumes: str = "events") -> list[Detector]:
    """One instance of every detector of ``consumes`` ("events", or "flows" for the flows stage) with the params
    the settings give it."""
    configured = settings.detectors
    # the policy file's thresholds first (``detectors:``), then the settings' [detectors.<name>] over them
    in_policy: Mapping[str, Mapping[str, Any]] = getattr(policy, "detector_params", {}) or {}
    _check_names("detectors", configured, detector_classes())
    _check_names("detectors", {k: dict(v) for k, v in in_policy.items()}, detector_classes())
    return [
        cls(policy, plugin_params("detectors", cls, {**in_policy.get(cls.name, {}), **configured.get(cls.name, {})}))
        for cls in detector_classes()
        if getattr(cls, "consumes", "events") == consumes
    ]


def build_flow_detectors(policy: ClauseMap, settings: Settings) -> list[Detector]:
    """The flow telemetry detectors (``consumes = "flows"``)."""
    return build_detectors(policy, settings, "flows")


def check_plugin_settings(settings: Settings) -> None:
    """Validate ``[parsers.*]`` and ``[detectors.*]`` against the plugins' Params; a ConfigError names the key."""
    for group, configured, classes in (
        ("parsers", settings.parsers, parser_classes()),
        ("detectors", settings.detectors, detector_classes()),
    ):
        _check_names(group, configured, classes)
        for cls in classes:
            plugin_params(group, cls, configured.get(cls.name, {}))


def plugin_params(group: str, cls: type[Parser] | type[Detector], values: dict[str, Any]) -> BaseModel:
    """``cls.Params`` built from ``values``; an unknown parameter or a bad value is a ConfigError naming the key."""
    params_cls = cls.Params
    for param in values:
        if param not in params_cls.model_fields:
            key = f"{group}__{cls.name}__{param}"
            known = ", ".join(params_cls.model_fields) or "none"
            raise ConfigError(
                f"setting {key!r} (env ABUSEDESK_{key.upper()}): {group[:-1]} {cls.name!r} has no parameter "
                f"{param!r}; its parameters: {known}",
                field=f"{group}.{cls.name}.{param}",
            )
    try:
        return params_cls(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = "__".join([group, cls.name, *(str(p) for p in first["loc"])])
        raise ConfigError(
            f"setting {key!r} (env ABUSEDESK_{key.upper()}): {first['msg']}", field=key.replace("__", ".")
        ) from None


def _check_names(
    group: str, configured: dict[str, dict[str, Any]], classes: tuple[type[Parser], ...] | tuple[type[Detector], ...]
) -> None:
    names = {cls.name for cls in classes}
    for name in configured:
        if name not in names:
            raise ConfigError(
                f"setting '{group}__{name}' (env ABUSEDESK_{group.upper()}__{name.upper()}): no {group[:-1]} is "
                f"named {name!r}; the {group} are: {', '.join(sorted(names))}",
                field=f"{group}.{name}",
            )


def sniff(report: Report, parsers: list[Parser] | None = None) -> Parser | None:
    """The first parser that recognises the input, or None."""
    for parser in parsers if parsers is not None else load_parsers():
        if parser.recognises(report):
            return parser
    return None
