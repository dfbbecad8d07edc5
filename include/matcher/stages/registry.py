"""Stage 6, promote: a versioned model registry on S3.

Layout under the registry URI::

    models/<version>/            the model files, training metadata, model card, validation report
    models/<version>/entry.json  what was promoted, when, from which run, with which metrics
    production.json              pointer to the version in production

Versions are written once (claimed with a conditional write, never copied into again) and never
deleted. ``production.json`` only changes by compare-and-swap
(S3 conditional writes), so of two concurrent promotions one wins and the other fails loudly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import UTC, datetime

from include.matcher.foundations import layout
from include.matcher.foundations.context import RunContext
from include.matcher.foundations.errors import Conflict
from include.matcher.foundations.pointers import (
    RegistryEntry,
    promoted_entry,
    read_entry,
    read_production,
    swap_pointer,
)
from include.matcher.foundations.settings import deployment_flag
from include.matcher.foundations.storage import ObjectStore, PreconditionFailed
from include.matcher.stages.approval import APPROVED, NOT_REQUIRED
from include.matcher.stages.corpus import record_trained
from include.matcher.stages.validation_report import ValidationReport, read_report

log = logging.getLogger(__name__)


def version_for(run_uri: str) -> str:
    """A sortable version name that a rerun of the same run reproduces: ``v<run time>-<run hash>``.

    The time comes from the run id (``scheduled__2026-11-25T02:00:00+00:00`` and the like).
    """
    digest = hashlib.sha256(run_uri.rstrip("/").encode()).hexdigest()[:6]
    found = re.search(r"(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})", run_uri.rstrip("/").rsplit("/", 1)[-1])
    return f"v{''.join(found.groups()[:3])}T{''.join(found.groups()[3:])}Z-{digest}" if found else f"v-{digest}"


class PromotionRefused(Conflict, ValueError):
    """A promotion the report's own record forbids: the gate refused it, or a person's decision is
    missing where one is required, or a person rejected it."""


def check_oversight(report: ValidationReport, approval_required: bool) -> None:
    """Human oversight, enforced where the pointer moves rather than by task states: a recorded
    rejection (or time-out) always stops a promotion; where approval is required, only a recorded
    approval by a named person lets it through. Marking the ``approve`` task successful by hand, or
    running ``promote`` from a shell, records nothing, so it promotes nothing."""
    approval = report.approval
    state = approval.state if approval else None
    if state not in (None, APPROVED, NOT_REQUIRED):
        raise PromotionRefused(f"the promotion of {report.version} was {state} by a reviewer: production stays")
    if approval_required and not (state == APPROVED and approval.by):
        raise PromotionRefused(
            f"promoting {report.version} needs a person's recorded approval and its report holds "
            + (f"{state!r}" if state else "none")
            + " (approve it in Airflow's Required actions, or `python -m include.matcher approve --report ...`)"
        )


class VersionExists(Conflict, RuntimeError):
    """A promotion would write into a registry version that another run (or another model) already wrote."""


def model_digest(storage: ObjectStore, model_uri: str) -> str:
    """A fingerprint of a model folder's files (path, size, ETag), reports and card left out."""
    digest = hashlib.sha256()
    base = model_uri.rstrip("/") + "/"
    for info in storage.list(model_uri):
        relative = info.uri[len(base) :]
        if relative.split("/", 1)[0] not in layout.NOT_MODEL_FILES:
            digest.update(f"{relative}\0{info.size}\0{info.etag}\n".encode())
    return digest.hexdigest()


def claim_version(storage: ObjectStore, target: layout.Model, run: str, digest: str) -> None:
    """Take ``target`` for ``run``'s model with a conditional write; a retry of the same promotion may
    go on, anything else is refused (:class:`VersionExists`): a version is written once."""
    claim = {"run": run, "model_digest": digest, "claimed_at": datetime.now(UTC).isoformat()}
    try:
        storage.put_json(target.claim, claim, if_none_match=True)
        return
    except PreconditionFailed:
        pass
    found = storage.get_with_etag(target.claim)
    held = json.loads(found[0]) if found else {}
    if held.get("run") != run or held.get("model_digest") != digest:
        raise VersionExists(
            f"registry version {target.uri} was already written by run {held.get('run')!r}"
            + (" from another model" if held.get("run") == run else "")
            + ": a version is written once, so this promotion is refused"
        )


def promote(report_uri: str, registry_uri: str, storage: ObjectStore, *, approval_required: bool | None = None) -> str:
    """Copy the candidate beside ``report_uri`` into a new registry version and point production at it.

    Only a candidate the gate passed, and (:func:`check_oversight`) one no person rejected; where
    ``approval_required`` (default: ``MATCHER_REQUIRE_APPROVAL``), only one a person approved.

    The version folder is claimed first (``_claim.json``, If-None-Match): a promotion never writes
    into a version another run or another model wrote (:class:`VersionExists`). A retry of the
    same promotion re-uses its claim, its copy and its ``entry.json``, so it is idempotent.
    Returns the promoted version's URI.
    """
    report = read_report(storage.get_bytes(report_uri))
    if not report.decision.promote:
        raise PromotionRefused(f"the gate refused this candidate: {report.decision.reason}")
    if approval_required is None:
        approval_required = deployment_flag("MATCHER_REQUIRE_APPROVAL")
    check_oversight(report, approval_required)
    candidate_uri = report.candidate
    version = report.version
    target = layout.version(registry_uri, version)
    version_uri = target.uri
    claim_version(storage, target, report.run, model_digest(storage, candidate_uri))

    entry = read_entry(storage, version_uri)
    copied = 0 if entry else storage.copy_prefix(candidate_uri, version_uri)
    current = read_production(storage, registry_uri)
    if current is not None and current.version == version:
        log.info("promote: %s already in production", version)
        return version_uri
    if entry is None:
        entry = RegistryEntry.written(
            {
                "version": version,
                "uri": version_uri,
                "promoted_at": datetime.now(UTC).isoformat(),
                "run": report.run,
                "metrics": report.candidate_result.metrics,
                "primary_metric": report.decision.primary_metric,
                "previous": current.version if current else None,
                "report": target.validation_report,
            }
        )
        storage.put_json(target.entry, entry.to_json(), if_none_match=True)
    swap_pointer(storage, layout.production_pointer(registry_uri), entry, current)
    log.info("promote: %s (%d files) is now in production, replacing %s", version, copied, entry.previous)
    return version_uri


def refuse_if_trained_on_erased(report: ValidationReport, locations, storage: ObjectStore) -> None:
    """An erasure wins over a night in flight: a candidate trained on a CV the ledger no longer holds
    (erased after the night read its pairs) is marked as such and never promoted; the next night
    retrains without it."""
    from include.matcher.stages.corpus import read_ledger
    from include.matcher.stages.erasure import mark_trained_on_erased

    if not report.candidate or not storage.exists(layout.Model(report.candidate).training_metadata):
        return
    metadata_uri = layout.Model(report.candidate).training_metadata
    trained = {row["source_key"] for row in storage.get_jsonl(metadata_uri) if row.get("source_key")}
    gone = trained - set(read_ledger(storage, locations)[0]["objects"])
    if gone:
        mark_trained_on_erased({report.candidate.rstrip("/")}, locations, storage)
        raise PromotionRefused(
            f"{len(gone)} of the {len(trained)} CVs candidate {report.version} was trained on left the corpus "
            "(erased) while this night ran: it is not promoted; the next night retrains without them"
        )


def promote_night(report_uri: str, context: RunContext) -> dict:
    """The pipeline's promote step: :func:`promote`, then the night's corpus recorded as trained on.

    Returns the production entry (version, uri, metrics), what the DAG's asset event carries.
    """
    locations, storage = context.locations, context.storage
    required = context.config.gate.require_approval
    report = read_report(storage.get_bytes(report_uri))
    refuse_if_trained_on_erased(report, locations, storage)
    version_uri = promote(report_uri, locations.registry, storage, approval_required=required)
    record_trained(report.run, locations, storage, "promoted")
    return promoted_entry(storage, version_uri).to_json()


def list_versions(storage: ObjectStore, registry_uri: str) -> list[RegistryEntry]:
    """Every promoted version's entry, oldest first."""
    entries = [info.uri for info in storage.list(layout.models(registry_uri)) if layout.Model.is_entry(info.uri)]
    return sorted((RegistryEntry.load(storage.get_bytes(uri)) for uri in entries), key=lambda e: e.version)


def list_rollbacks(storage: ObjectStore, registry_uri: str) -> list[dict]:
    """Every rollback (``from``, ``to``, ``at``), oldest first."""
    records = [storage.get_json(info.uri) for info in storage.list(layout.rollbacks(registry_uri))]
    return sorted(records, key=lambda record: record["at"])


def rollback(version: str, registry_uri: str, storage: ObjectStore) -> str:
    """Point production back at an earlier ``version`` (kept in the registry); returns its URI."""
    version_uri = layout.version(registry_uri, version).uri
    found = read_entry(storage, version_uri)
    if found is None:
        known = ", ".join(v.version for v in list_versions(storage, registry_uri)) or "none"
        raise LookupError(f"no version {version!r} in {registry_uri} (known: {known})")
    current = read_production(storage, registry_uri)
    if current is not None and current.version == version:
        log.info("rollback: %s is already in production", version)
        return version_uri
    entry = RegistryEntry.written(
        {
            **found.to_json(),
            "promoted_at": datetime.now(UTC).isoformat(),
            "previous": current.version if current else None,
            "rolled_back_from": current.version if current else None,
        }
    )
    swap_pointer(storage, layout.production_pointer(registry_uri), entry, current)
    stamp = entry.promoted_at.replace(":", "").replace("-", "")[:15] + "Z-" + version
    storage.put_json(
        layout.rollback_record(registry_uri, stamp),
        {"from": entry.previous, "to": version, "at": entry.promoted_at},
    )
    log.info("rollback: production %s -> %s", entry.previous, version)
    return version_uri
