"""The effective settings of the mesh, as ``plugmesh config`` prints them.

Every setting is a variable of :data:`launcher.processes.ENVIRONMENT` (``PLUGMESH_`` and
the standard ``OTEL_`` ones), the one table the README's configuration section is
generated from, so a variable added there shows up here without a second list. Each
setting is either set in the environment (a non-blank value, which the processes read) or
left at its documented default.

Secrets never reach the output: a variable the table marks as secret, or whose name says
it holds a secret, token or password, shows ``****``; a URL (a database's, NATS's) shows
everything but its password.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from launcher.output import JSON, TABLE, print_json, render_table
from launcher.processes import ENVIRONMENT, EnvVar
from launcher.redaction import MASK, redact_url

__all__ = [
    "DEFAULT",
    "ENVIRONMENT_SOURCE",
    "Setting",
    "effective_settings",
    "print_settings",
    "settings_document",
]

#: The sources of a setting's value.
ENVIRONMENT_SOURCE = "environment"
DEFAULT = "default"

# A variable named like this holds a secret even if the table forgot to say so.
_SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD")
SETTINGS_HEADERS = ("VARIABLE", "VALUE", "SOURCE")


@dataclass(frozen=True)
class Setting:
    """One setting as it takes effect.

    Attributes:
        variable: Its ``PLUGMESH_`` environment variable.
        value: The value in effect, secrets masked; for a default, the documented default
            (which may describe rather than spell it, such as ``(embedded)``).
        source: ``environment`` or ``default``.
        masked: Whether ``value`` hides part or all of what the environment holds.
    """

    variable: str
    value: str
    source: str
    masked: bool


def _holds_secret(var: EnvVar) -> bool:
    return var.secret or any(word in var.name for word in _SECRET_WORDS)


def _shown(var: EnvVar, raw: str) -> str:
    # A secret URL (a database's) is worth showing without its password; any other
    # secret, or a URL variable holding something else, is shown as nothing but the mask.
    if _holds_secret(var) and not (var.name.endswith("_URL") and "://" in raw):
        return MASK
    return redact_url(raw)


def effective_settings(
    env: Mapping[str, str], variables: Sequence[EnvVar] = ENVIRONMENT
) -> list[Setting]:
    """Every setting of ``variables`` as ``env`` makes it, in the table's order.

    A blank value counts as unset, as the processes read it.
    """
    settings = []
    for var in variables:
        raw = env.get(var.name, "")
        if raw.strip():
            shown = _shown(var, raw)
            settings.append(Setting(var.name, shown, ENVIRONMENT_SOURCE, shown != raw))
        else:
            settings.append(Setting(var.name, var.default, DEFAULT, masked=False))
    return settings


def settings_document(settings: Sequence[Setting]) -> dict[str, Any]:
    """The settings as ``plugmesh config -o json`` prints them: ``settings`` maps each
    variable to its ``value``, ``source`` and ``masked``, in the table's order."""
    return {
        "settings": {
            s.variable: {"value": s.value, "source": s.source, "masked": s.masked} for s in settings
        }
    }


def print_settings(env: Mapping[str, str], out: TextIO, output: str = TABLE) -> int:
    """``plugmesh config``: print the effective settings as a table, or as JSON when
    ``output`` is ``json``; always 0."""
    settings = effective_settings(env)
    if output == JSON:
        print_json(settings_document(settings), out)
        return 0
    # A PEM key set inline spans lines; one row per setting keeps the table readable.
    rows = [(s.variable, s.value.replace("\n", "\\n"), s.source) for s in settings]
    print(render_table(SETTINGS_HEADERS, rows), file=out)
    return 0
