"""A version's page, two versions compared, a model card, a CV's record, and the rollback's confirmation.

Versions are named as the registry names them; a night's candidate that was never promoted is named
by its version too (its report says which), and ``base`` is the base model.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.matcher.foundations import layout
from include.matcher.foundations.errors import NotFound
from include.matcher.foundations.pointers import RegistryEntry
from include.matcher.foundations.settings import GateConfig, Locations, TrainingConfig
from include.matcher.foundations.storage import ObjectStore
from include.matcher.foundations.templating import render_template
from include.matcher.pages.dashboard import registry_view, run_reports
from include.matcher.pages.night_state import night_state
from include.matcher.stages.report import AUDIT_HEAD, audit_headline, audit_rows, flagged_groups
from include.matcher.stages.validation_report import ValidationReport

BASE = "base"


class UnknownVersion(NotFound, LookupError):
    """A version name neither the registry nor any night's report knows."""


@dataclass(frozen=True)
class Version:
    name: str
    model_uri: str
    entry: RegistryEntry | None  # None for a candidate never promoted, and the base model
    report: ValidationReport | None  # the night that validated it

    @property
    def label(self) -> str:
        return "the base model" if self.name == BASE else self.name


def known_versions(
    storage: ObjectStore, locations: Locations
) -> tuple[dict[str, Version], list[ValidationReport], tuple]:
    """Every version a person can pick, newest first (promoted ones and nights' candidates), the nights,
    and the registry as :func:`registry_view` read it."""
    registry = registry_view(storage, locations)
    entries = registry[1]
    reports, _ = run_reports(storage, locations)
    by_version = {report.version: report for report in reports}
    found: dict[str, Version] = {}
    for report in reversed(reports):
        if report.candidate:
            entry = entries.get(report.version)
            found[report.version] = Version(report.version, entry.uri if entry else report.candidate, entry, report)
    for name, entry in sorted(entries.items(), reverse=True):
        found.setdefault(name, Version(name, entry.uri, entry, by_version.get(name)))
    found[BASE] = Version(BASE, TrainingConfig().base_model, None, None)
    return found, reports, registry


def version_named(storage: ObjectStore, locations: Locations, name: str) -> Version:
    return _named(known_versions(storage, locations)[0], name)


def _named(versions: dict[str, Version], name: str) -> Version:
    if name not in versions:
        raise UnknownVersion(f"no version {name!r}: neither the registry nor any night knows it")
    return versions[name]


def version_page(storage: ObjectStore, locations: Locations, name: str) -> str:
    versions, _, (production, entries, rollbacks) = known_versions(storage, locations)
    version = _named(versions, name)
    state = night_state(version.report, entries, production, rollbacks) if version.report else None
    live = production.version if production else None
    return render_template(
        "version.html",
        title=f"Version {version.label}",
        version=version,
        state=state,
        live=live,
        may_roll_back=version.entry is not None and version.name != live,
        audit=version.report.bias_audit if version.report else None,
        audit_line=audit_headline(version.report.bias_audit) if version.report else "",
    )


def compare_page(
    storage: ObjectStore,
    locations: Locations,
    engine,
    a: str | None,
    b: str | None,
    query: str | None = None,
    user: str | None = None,
) -> str:
    """Two versions side by side: their metrics on one pool with the paired interval of the change,
    their bias audits, and for a pasted job both rankings with each CV's move marked."""
    from include.matcher.serving.comparison import comparison_pool, rank_changes
    from include.matcher.serving.usage_log import search_log

    versions, reports, (production, _, _) = known_versions(storage, locations)
    live = production.version if production else None
    a = a or live or BASE
    if not b:
        b = next((name for name in versions if name not in (a, BASE)), BASE)
    context = {"title": "Compare versions", "versions": versions, "a": a, "b": b, "query": query, "live": live}
    missing = [name for name in (a, b) if name not in versions]
    if missing:
        return render_template("compare.html", **context, problem=f"no version {missing[0]!r}", pool=None)
    pool = comparison_pool(reports, storage)
    if pool is None:
        return render_template("compare.html", **context, problem="no night's held-out CVs are stored", pool=None)
    gate = GateConfig()
    left = engine.scored(a, versions[a].model_uri, pool)
    right = engine.scored(b, versions[b].model_uri, pool)
    change = engine.change(left, right, gate.primary_metric, gate.confidence, gate.min_category_support)
    rankings = None
    if query:
        ranked = {side: engine.rank(scored, query) for side, scored in (("a", left), ("b", right))}
        for side, scored in (("a", left), ("b", right)):
            search_log(storage, locations).record(
                user=user,
                query=query,
                k=10,
                filters={"view": "compare versions", "pool": "held-out CVs of " + pool.night},
                version=scored.version,
                snapshot=pool.test_uri,
                hits=ranked[side],
            )
        changes = rank_changes(ranked["a"], ranked["b"])
        rankings = [
            {"rank": rank, "left": x, "right": y, **changes[rank - 1]}
            for rank, (x, y) in enumerate(zip(ranked["a"], ranked["b"], strict=False), 1)
        ]

    def audit_of(version: Version):
        audit = version.report.bias_audit if version.report else None
        if not audit:
            return None
        flagged = flagged_groups(audit)
        return {
            "headline": audit_headline(audit),
            "rows": [(group, cells, group in flagged) for group, cells in audit_rows(audit)],
        }

    return render_template(
        "compare.html",
        **context,
        problem=None,
        pool=pool,
        held_out=len(left.truth),
        metric=gate.primary_metric,
        metric_names=sorted((set(left.metrics) & set(right.metrics)) - {"count"}),
        left=left,
        right=right,
        change=change,
        rankings=rankings,
        audits={"a": audit_of(versions[a]), "b": audit_of(versions[b])},
        audit_head=AUDIT_HEAD,
    )


def card_page(storage: ObjectStore, locations: Locations, version: str | None = None, run: str | None = None) -> str:
    """A model card (``README.md`` beside the model) as a page: Markdown rendered with raw HTML
    switched off, so nothing in a card can be markup."""
    from markdown_it import MarkdownIt
    from markupsafe import Markup

    if version:
        found = version_named(storage, locations, version)
        card_uri, label = layout.Model(found.model_uri).card, found.label
    else:
        card_uri, label = layout.Run(locations.run_folder_uri(run)).candidate.card, f"the {run} night's candidate"
    found = storage.get_with_etag(card_uri)
    if found is None:  # a version put in the registry by hand (every night's candidate has one)
        return render_template(
            "message.html",
            title=f"Model card: {label}",
            text=f"No model card was written for {label}: it did not come from a night of this pipeline.",
            status="",
        )
    text = found[0].decode()
    rendered = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    return render_template("card.html", title=f"Model card: {label}", label=label, card=Markup(rendered))


def cv_page(storage: ObjectStore, locations: Locations, key: str) -> str:
    """What is stored about one CV (never its text): category, how it was read, where its file is."""
    from include.matcher.foundations.uris import S3Uri
    from include.matcher.stages.corpus import read_ledger
    from include.matcher.stages.erasure import entry_raw_uri

    ledger = read_ledger(storage, locations)[0]["objects"]
    base = S3Uri.parse(locations.raw_cvs).key.rstrip("/")
    # Search shows a CV by its key under the raw prefix; the ledger may hold the bucket key.
    found = [name for name in (key, f"{base}/{key}" if base else key) if name in ledger]
    if not found:
        raise LookupError(f"no stored CV {key!r}: never ingested, erased, or removed")
    entry = ledger[found[0]]
    shown = {
        name: entry[name]
        for name in ("category", "status", "kind", "chars", "extractor", "parser", "size", "modified", "reason")
        if name in entry
    }
    shown["file"] = entry_raw_uri(found[0], entry, locations)
    return render_template("cv.html", title=f"CV {key}", key=key, fields=shown)


def rollback_page(storage: ObjectStore, locations: Locations, name: str) -> str:
    """The confirmation a person answers before the rollback DAG runs."""
    versions, _, (production, _, _) = known_versions(storage, locations)
    version = _named(versions, name)
    if version.entry is None:
        raise UnknownVersion(f"{name!r} was never promoted: only a registry version can go back into production")
    return render_template("rollback.html", title=f"Roll back to {name}", version=version, production=production)
