"""The names the bias audit puts on CVs: groups of full names, and how a name goes on a CV.

The groups are data (``audit_names.json`` beside this module, the Bertrand & Mullainathan 2004
audit-study names, with its source), so a deployment can audit its own groups (pronouns, age
markers, other names) by pointing ``MATCHER_AUDIT_NAMES`` or ``bias-audit --names`` at a file of
its own, without code. A file is either ``{"group": ["First Last", ...], ...}`` or the shipped shape
``{"groups": {...}, "line": "{name}", "source": "..."}``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAMES_FILE = Path(__file__).with_name("audit_names.json")
NAME_PLACEHOLDER = "{name}"
# Where the audit puts a name on a CV: a line at its top, a contact line made of it (an e-mail built
# from the name and a phone, as a CV's header has them), a closing line after a sign-off.
PLACEMENTS = ("top", "contact", "closing")
AUDIT_PHONE = "+1 (555) 010-0199"  # the same for every variant: only the name differs
# The audit scores with at most the first this many names of a group; augmentation trains on the rest,
# so a model is never audited on names it was taught to ignore.
AUDITED_AT_MOST = 4


@dataclass(frozen=True)
class AuditNames:
    """Groups of names (group -> full names, in file order) and the line a name becomes on a CV."""

    groups: dict[str, tuple[str, ...]]
    line: str = NAME_PLACEHOLDER
    source: str = ""

    def first(self, per_group: int) -> AuditNames:
        """The first ``per_group`` names of every group (at least one: 0 is the audit turned off, which
        its callers decide before they ask for names, never "all of them")."""
        if per_group < 1:
            raise ValueError(f"names per group must be at least 1 (0 turns the audit off), not {per_group}")
        return AuditNames({g: names[:per_group] for g, names in self.groups.items()}, self.line, self.source)

    def for_training(self) -> AuditNames:
        """The names counterfactual augmentation trains with: each group's names after the first
        :data:`AUDITED_AT_MOST` (the ones the audit may score with), or all of a group that has no more."""
        return AuditNames(
            {g: names[AUDITED_AT_MOST:] or names for g, names in self.groups.items()}, self.line, self.source
        )

    def named(self) -> list[tuple[str, str]]:
        """(group, name) for every name, groups in file order."""
        return [(group, name) for group, names in self.groups.items() for name in names]

    def put_on(self, name: str, cv_text: str, placement: str = "top") -> str:
        """The CV with the name put on it in ``placement`` (:data:`PLACEMENTS`): the only difference
        between two variants."""
        if placement == "top":
            return self.line.replace(NAME_PLACEHOLDER, name) + "\n" + cv_text
        if placement == "contact":
            return f"{email_of(name)} | {AUDIT_PHONE}\n{cv_text}"
        if placement == "closing":
            return f"{cv_text}\nSincerely, {self.line.replace(NAME_PLACEHOLDER, name)}"
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, not {placement!r}")


def email_of(name: str) -> str:
    """The address a person of that name might use: ``first.last@example.com`` (accents folded)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    local = ".".join(re.sub(r"[^a-z0-9]", "", part) for part in folded.split())
    local = re.sub(r"\.{2,}", ".", local).strip(".")
    return f"{local or 'candidate'}@example.com"


def load_audit_names(path: str | Path | None = None) -> AuditNames:
    """The groups in ``path`` (default: ``MATCHER_AUDIT_NAMES``, else the shipped file); ``ValueError``
    naming what is wrong with a file that is not two or more groups of names."""
    from include.matcher.foundations.settings import deployment_setting

    path = Path(path or deployment_setting("MATCHER_AUDIT_NAMES") or DEFAULT_NAMES_FILE)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"audit names {path}: not a readable JSON file ({error})") from None
    groups = data.get("groups", data) if isinstance(data, dict) else None
    line = data.get("line", NAME_PLACEHOLDER) if isinstance(data, dict) and "groups" in data else NAME_PLACEHOLDER
    if not isinstance(groups, dict) or len(groups) < 2:
        raise ValueError(f"audit names {path}: expected two or more groups, each a list of names")
    for group, names in groups.items():
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError(f"audit names {path}: group {group!r} must be a non-empty list of names")
    seen: dict[str, str] = {}
    for group, names in groups.items():
        for name in names:
            spelt = " ".join(name.split()).casefold()
            if spelt in seen:
                # a name in two groups (or twice in one) makes their rates partly the same people's:
                # the audit could no longer tell the groups apart, so no rule could refuse anything
                raise ValueError(
                    f"audit names {path}: {name!r} is in group {seen[spelt]!r} and again in {group!r}; "
                    "each name belongs to one group, once"
                )
            seen[spelt] = group
    if not isinstance(line, str) or NAME_PLACEHOLDER not in line:
        raise ValueError(f"audit names {path}: 'line' must contain {NAME_PLACEHOLDER}")
    source = data.get("source", "") if isinstance(data, dict) else ""
    return AuditNames({g: tuple(n.strip() for n in names) for g, names in groups.items()}, line, str(source))
