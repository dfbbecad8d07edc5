"""``python -m include.matcher <command>``: every stage from a shell, plus the old command's flags.

``fine-tune`` keeps ``fine_tune_matcher``'s interface exactly (``--data-root --jobs-file --output
--loss --batch-size --epochs --learning-rate --negative-ratio``) and writes
``training_metadata.jsonl`` beside the model. Stage commands take and print S3 URIs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from include.matcher.foundations.audit_names import PLACEMENTS
from include.matcher.foundations.errors import BadInput, MatcherError, StorageUnavailable
from include.matcher.foundations.settings import (
    DataOptions,
    GateConfig,
    Locations,
    SplitConfig,
    TrainingConfig,
    check_deployment,
    deployment_setting,
    environment_table,
    settings_table,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_S3_DIR = PROJECT_ROOT / ".local" / "s3"


def main(argv: list[str] | None = None) -> int:
    try:  # a bad deployment setting stops every command at once, in one line
        check_deployment()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=deployment_setting("MATCHER_LOG_LEVEL"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        # Libraries print progress to stdout; keep stdout for the command's result alone.
        with contextlib.redirect_stdout(sys.stderr):
            return args.handler(args) or 0
    except USER_ERRORS as error:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        print(f"error: {s3_setup_hint(error) or error}", file=sys.stderr)
        return 2
    except Exception as error:
        hint = s3_setup_hint(error)
        if hint is None or logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        print(f"error: {hint}", file=sys.stderr)
        return 2


def s3_setup_hint(error: Exception) -> str | None:
    """One line saying what to run, for a shell that does not reach S3 (no keys, no endpoint)."""
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError, PartialCredentialsError

    run = 'eval "$(.venv/bin/python -m include.matcher s3 env)"'
    error = error.__cause__ if isinstance(error, StorageUnavailable) and error.__cause__ else error
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            f"this shell has no S3 credentials: for the embedded server (make up or make s3-start) run {run}; "
            "for your own S3 set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL_S3"
        )
    if isinstance(error, EndpointConnectionError):
        return f"no S3 answers at {error.kwargs.get('endpoint_url')}: start it (make s3-start) or run {run}"
    return None


class UsageError(BadInput, ValueError):
    """A command called with flags that do not fit together."""


# What a user can cause and fix (a missing object or file, a bad value, an unknown version): one
# line, exit status 2. Anything else is a bug and keeps its traceback; MATCHER_LOG_LEVEL=DEBUG
# shows the traceback of these too.
USER_ERRORS = (MatcherError, ValueError, LookupError, OSError)


# The commands by what a person does with them, in ``--help``'s order.
COMMAND_GROUPS = {
    "Set up and try it": ["s3", "bootstrap", "demo-data", "upload", "settings"],
    "Run a night, stage by stage (what the DAG does)": [
        "ingest",
        "parse",
        "build-pairs",
        "fine-tune",
        "validate",
        "approve",
        "promote",
        "refresh-embeddings",
    ],
    "Search and inspect": ["match", "production", "last-run", "evaluate", "bias-audit"],
    "Operate": ["rollback", "erase", "housekeeping"],
}
EXAMPLES = """examples:
  eval "$(.venv/bin/python -m include.matcher s3 env)"     this shell reaches the embedded S3 (make up starts it)
  python -m include.matcher production                     what is in production and what search serves
  python -m include.matcher match --text "Registered nurse for an ICU" --top 5
  python -m include.matcher match --text "..." --category nurse   (categories match case-blind)
  python -m include.matcher last-run                       the newest night: counts, gate decision, timings
  python -m include.matcher approve --report s3://.../validation_report.json --by alice
  python -m include.matcher rollback                       production back to the version it replaced
  python -m include.matcher fine-tune --data-root data/ --jobs-file job_descriptions.json --output model/
  python -m include.matcher <command> --help               a command's flags"""


class GroupedHelpParser(argparse.ArgumentParser):
    """The top-level ``--help``: commands in groups (:data:`COMMAND_GROUPS`), then examples."""

    def format_help(self) -> str:
        summaries = {action.dest: action.help for action in self._subparsers._group_actions[0]._choices_actions}
        lines = [self.format_usage().rstrip(), "", self.description or "", ""]
        for title, names in COMMAND_GROUPS.items():
            lines.append(f"{title}:")
            lines += [f"  {name:<19}{summaries.get(name, '')}" for name in names]
            lines.append("")
        listed = {name for names in COMMAND_GROUPS.values() for name in names}
        rest = [name for name in summaries if name not in listed]
        if rest:
            lines += ["Other:", *(f"  {name:<19}{summaries[name]}" for name in rest), ""]
        return "\n".join(lines) + EXAMPLES + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = GroupedHelpParser(prog="python -m include.matcher", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(title="commands", metavar="<command>", parser_class=argparse.ArgumentParser)

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    s3 = command("s3", cmd_s3, "Start, stop or describe the embedded SeaweedFS S3 server (.local/s3).")
    s3.add_argument("action", choices=["start", "stop", "status", "env"])
    s3.add_argument("--port", type=int, help="S3 port (start: default 8333; env: the running server's, else 8333)")
    s3.add_argument("--data-dir", type=Path, default=LOCAL_S3_DIR, help="where its data, keys and pid live")

    demo = command("demo-data", cmd_demo_data, "Generate synthetic demo CVs and job descriptions into a folder.")
    demo.add_argument("--target", default="demo-data")
    demo.add_argument("--cvs-per-category", type=int, default=12)

    upload = command("upload", cmd_upload, "Upload a local <CATEGORY>/<file> folder (e.g. data/data) or a file to S3.")
    upload.add_argument("source", help="a folder (uploaded recursively) or a file")
    upload.add_argument("--to", default="cvs", help="cvs (the raw CV prefix), jobs-file, job-offers, or an s3:// URI")

    command("bootstrap", cmd_bootstrap, "Create the pipeline's buckets.")

    ingest = command("ingest", cmd_ingest, "Stage 1: diff the raw prefix with the ledger; prints the manifest URI.")
    ingest.add_argument("--run-id", required=True)
    ingest.add_argument("--force", action="store_true", help="retrain even without new files")
    add_setting_flags(ingest, DataOptions, only=("raw_prefix",))

    parse = command("parse", cmd_parse, "Stage 2: parse a manifest's files; prints the corpus URI.")
    parse.add_argument("--manifest", required=True)
    parse.add_argument("--run-id", required=True)

    pairs = command("build-pairs", cmd_build_pairs, "Stage 3: training pairs from a corpus; prints the pairs URI.")
    pairs.add_argument("--corpus", required=True)
    pairs.add_argument("--run-id", required=True)
    add_setting_flags(pairs, TrainingConfig)

    tune = command(
        "fine-tune",
        cmd_fine_tune,
        "Stage 4: fine-tune. With --data-root/--jobs-file/--output it is the old fine_tune_matcher command.",
    )
    tune.add_argument("--data-root", help="local <CATEGORY>/<file> folder or s3:// prefix")
    tune.add_argument("--jobs-file", help="job_descriptions.json, local or s3://")
    tune.add_argument("--output", help="where to write the model (local folder or s3:// prefix)")
    tune.add_argument("--pairs", help="stage mode: a build-pairs output URI")
    tune.add_argument("--run-id", help="stage mode: the run the candidate belongs to")
    add_setting_flags(tune, TrainingConfig)
    add_setting_flags(tune, GateConfig, only=("primary_metric",))  # --pairs picks checkpoints by it

    validate = command(
        "validate", cmd_validate, "Stage 5: score candidate vs production and decide; prints the report URI."
    )
    validate.add_argument("--candidate", required=True)
    validate.add_argument("--pairs", required=True)
    validate.add_argument("--run-id", required=True)
    add_setting_flags(validate, GateConfig)
    add_setting_flags(validate, TrainingConfig, only=("base_model",))

    promote = command(
        "promote", cmd_promote, "Stage 6: promote the candidate a report approved; prints the version URI."
    )
    promote.add_argument("--report", required=True)

    approve = command(
        "approve",
        cmd_approve,
        "Record a person's decision on a candidate the gate passed (what Airflow's Required actions record); "
        "where MATCHER_REQUIRE_APPROVAL is on, promote needs it.",
    )
    approve.add_argument("--report", required=True)
    approve.add_argument("--reject", action="store_true", help="reject the promotion (production stays)")
    approve.add_argument("--by", help="who decides (default: the OS user), kept in the report and model card")

    refresh = command(
        "refresh-embeddings",
        cmd_refresh,
        "Stage 7: re-embed the corpus and job offers: with production's model as the night does (--run-id), or "
        "with a version (--version-uri).",
    )
    refresh.add_argument("--corpus", required=True)
    refresh.add_argument("--version-uri", help="embed with this version and publish (an operator's re-embed)")
    refresh.add_argument("--run-id", help="stage mode: production's model, published as the run's settings allow")
    add_setting_flags(refresh, DataOptions, only=("raw_prefix", "publish_from_other_prefix"))

    evaluate = command(
        "evaluate", cmd_evaluate, "Score a model on labelled CVs; the last line printed is the metrics JSON."
    )
    evaluate.add_argument("--model", required=True, help="model folder, s3:// URI, 'production' or the base model name")
    evaluate.add_argument("--data-root", required=True)
    evaluate.add_argument("--jobs-file", required=True)
    evaluate.add_argument("--split", choices=["all", "train", "validation", "test"], default="test")
    evaluate.add_argument("--strip-title", action="store_true", help="drop each CV's first line (its job title)")

    rollback = command(
        "rollback", cmd_rollback, "Point production back at an earlier version and refresh the embeddings with it."
    )
    rollback.add_argument(
        "--version", help="a version under <registry>/models/ (default: the version production replaced)"
    )
    rollback.add_argument("--skip-refresh", action="store_true", help="only move the pointer")

    match = command("match", cmd_match, "Top candidates for a job, from the embeddings the nightly refresh stored.")
    query = match.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", help="the job description")
    query.add_argument("--job", help="a job description file (.pdf, .docx, .txt)")
    match.add_argument("--top", type=int, default=10, help="how many candidates (default 10)")
    match.add_argument("--category", help="only CVs filed under this category (case-blind: nurse finds NURSE)")
    match.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    match.add_argument("--user", help="who searches, for the search log (default: the OS user)")

    bias = command(
        "bias-audit",
        cmd_bias_audit,
        "Bias audit of a model: the same CVs under names of each group (LL144-style rates and impact ratios).",
    )
    bias.add_argument("--model", required=True, help="'production', a model folder, an s3:// URI or the base model")
    bias.add_argument("--data-root", help="a <CATEGORY>/<file> folder (default: the latest night's held-out CVs)")
    bias.add_argument("--jobs-file", help="with --data-root: job_descriptions.json (default: the deployment's)")
    bias.add_argument("--names", help='a JSON file {"group": ["First Last", ...], ...} (default: the shipped names)')
    bias.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    bias.add_argument(
        "--placement",
        choices=(*PLACEMENTS, "all"),
        default="all",
        help="where the name goes: a line at the top, a contact line (e-mail made of it, phone), a closing line "
        "after a sign-off, or all three (default; the headline is each figure at its worst placement)",
    )
    bias.add_argument(
        "--model-only",
        action="store_true",
        help="the model alone: it reads every name (no redaction), the product path is not scored",
    )
    add_setting_flags(bias, GateConfig, only=("audit_cvs", "audit_names_per_group"))
    bias.add_argument(
        "--confidence",
        type=float,
        default=None,
        help="confidence of the audit's bootstrap intervals over the CVs, e.g. 0.95 (default: the gate's, 0.95)",
    )

    erase = command(
        "erase",
        cmd_erase,
        "Erase candidates everywhere the pipeline put them (GDPR Art. 17); prints the receipt's counts.",
    )
    erase.add_argument("--key", action="append", default=[], help="a raw key (CATEGORY/file or the bucket key)")
    erase.add_argument("--content-hash", action="append", default=[], help="or a raw file's sha256")
    erase.add_argument("--dry-run", action="store_true", help="list what would change; change nothing")
    erase.add_argument("--keep-raw", action="store_true", help="leave the raw file (the source system owns it)")
    erase.add_argument("--by", help="who asks (default: the OS user), for the receipt")
    erase.add_argument(
        "--submit",
        action="store_true",
        help="write an erasure request for the matcher_erasure DAG and print its URI (the DAG never sees the keys)",
    )

    keep = command(
        "housekeeping",
        cmd_housekeeping,
        "Retention: delete what MATCHER_RETENTION_DAYS, _KEEP_SNAPSHOTS and _AUDIT_RETENTION_DAYS keep no longer.",
    )
    keep.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")

    settings = command(
        "settings", cmd_settings, "Print the run settings (DAG params and these flags) as a Markdown table."
    )
    settings.add_argument("--environment", action="store_true", help="the deployment's environment variables instead")
    command("production", cmd_production, "Print the production pointer and the current embeddings pointer.")
    command("last-run", cmd_last_run, "Summarise the newest run: counts, artefacts, gate decision, pointers.")
    return parser


CASTS = {"int": int, "float": float, "str": str}


def add_setting_flags(parser: argparse.ArgumentParser, *classes, only: tuple[str, ...] = ()) -> None:
    """One flag per run setting of ``classes`` (``batch_size`` -> ``--batch-size``; booleans as
    ``--strip-titles/--no-strip-titles``), generated from the settings' declarations. A flag left out
    keeps the dataclass default."""
    from dataclasses import fields

    for cls in classes:
        for f in fields(cls):
            if only and f.name not in only:
                continue
            flag, meta = "--" + f.name.replace("_", "-"), f.metadata
            help_text = f"{meta['help']} (default: {f.default!r})".replace("%", "%%")
            if str(f.type) == "bool":
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            else:
                parser.add_argument(
                    flag, type=CASTS[str(f.type)], default=None, choices=meta.get("choices"), help=help_text
                )


def training_config(args) -> TrainingConfig:
    return TrainingConfig.from_mapping(vars(args))


def storage():
    from include.matcher.foundations.storage import Storage

    return Storage()


def run_uri(run_id: str) -> str:
    return Locations.from_env().run_uri(run_id)


def run_context(args, **params):
    """The stage context of ``--run-id`` (none for operator actions), with the run settings among the
    command's flags (and ``params``) over the deployment's."""
    from include.matcher.foundations.context import RunContext
    from include.matcher.foundations.settings import run_setting_fields

    given = {f.name: getattr(args, f.name) for _, f in run_setting_fields() if getattr(args, f.name, None) is not None}
    return RunContext.of(getattr(args, "run_id", None), {**given, **params}, storage())


def emit(value) -> None:
    """Print a command's result (a URI or a JSON line) on the real stdout."""
    print(value if isinstance(value, str) else json.dumps(value, sort_keys=True), file=sys.__stdout__, flush=True)


# -- commands ----------------------------------------------------------------------------------------


def cmd_s3(args) -> int:
    from include.devtools import embedded_s3

    port = args.port or embedded_s3.running_port(args.data_dir) or embedded_s3.DEFAULT_S3_PORT
    if args.action == "start":
        if embedded_s3.running(args.data_dir):
            print(f"SeaweedFS already running (data in {args.data_dir})", file=sys.stderr)
        else:
            server = embedded_s3.start(args.data_dir, s3_port=port)
            print(
                f"SeaweedFS S3 on {server.endpoint} (data in {args.data_dir}, keys in "
                f"{args.data_dir / 'credentials.env'})",
                file=sys.stderr,
            )
    elif args.action == "stop":
        print("stopped" if embedded_s3.stop(args.data_dir) else "not running", file=sys.stderr)
    elif args.action == "status":
        up = embedded_s3.running(args.data_dir)
        emit("running" if up else "stopped")
        return 0 if up else 1
    else:  # env: shell lines for `eval`
        access, secret = embedded_s3.load_or_create_keys(args.data_dir)
        endpoint = f"http://127.0.0.1:{port}"
        emit(
            f"export AWS_ACCESS_KEY_ID={access} AWS_SECRET_ACCESS_KEY={secret} AWS_ENDPOINT_URL_S3={endpoint} "
            "AWS_DEFAULT_REGION=us-east-1"
        )
    return 0


def cmd_demo_data(args) -> int:
    from include.devtools.demo_data import generate

    counts = generate(args.target, cvs_per_category=args.cvs_per_category)
    print(
        f"generated {counts['cvs']} demo CVs and {counts['broken']} deliberately broken files in {args.target}",
        file=sys.stderr,
    )
    return 0


def cmd_upload(args) -> int:
    from include.matcher.foundations.uris import S3Uri

    store = storage()
    source = Path(args.source)
    named = {"cvs": "raw_cvs", "jobs-file": "jobs_file", "job-offers": "job_offers"}
    target = getattr(Locations.from_env(), named[args.to]) if args.to in named else args.to

    if not source.exists():
        raise FileNotFoundError(f"nothing to upload: {str(source)!r} does not exist")
    if source.is_dir() and not any(p.is_file() for p in source.rglob("*")):
        raise FileNotFoundError(f"nothing to upload: the folder {str(source)!r} holds no files")
    store.ensure_bucket(S3Uri.parse(target).bucket)
    if source.is_file():
        store.put_bytes(target, source.read_bytes())
        print(f"uploaded {source} -> {target}", file=sys.stderr)
    else:
        uris = store.upload_dir(source, target)
        print(f"uploaded {len(uris)} files from {source} -> {target}", file=sys.stderr)
    return 0


def cmd_bootstrap(args) -> int:
    store = storage()
    for bucket in sorted(Locations.from_env().buckets()):
        store.ensure_bucket(bucket)
        print(f"bucket {bucket} ready", file=sys.stderr)
    return 0


def cmd_ingest(args) -> int:
    from include.matcher.stages.ingest import find_new_files

    emit(find_new_files(run_context(args, force_retrain=args.force)))
    return 0


def cmd_parse(args) -> int:
    from include.matcher.stages.parse import parse

    emit(parse(args.manifest, run_uri(args.run_id), Locations.from_env(), storage()))
    return 0


def cmd_build_pairs(args) -> int:
    from include.matcher.stages.pairs import build_pairs

    emit(build_pairs(args.corpus, run_context(args)))
    return 0


def cmd_fine_tune(args) -> int:
    config = training_config(args)
    if args.pairs:
        from include.matcher.stages.training import fine_tune

        if not args.run_id:
            raise UsageError("--pairs needs --run-id")
        emit(fine_tune(args.pairs, run_context(args)))
        return 0
    missing = [
        flag
        for flag, value in (("--data-root", args.data_root), ("--jobs-file", args.jobs_file), ("--output", args.output))
        if not value
    ]
    if missing:
        raise UsageError(f"fine-tune needs {', '.join(missing)} (or --pairs and --run-id in stage mode)")
    from include.legacy.fine_tune_matcher import fine_tune_matcher

    emit(fine_tune_matcher(args.data_root, args.jobs_file, args.output, config))
    return 0


def cmd_validate(args) -> int:
    from include.matcher.stages.validation import evaluate

    emit(evaluate(args.candidate, args.pairs, run_context(args)))
    return 0


def cmd_promote(args) -> int:
    from include.matcher.stages.registry import promote_night

    emit(promote_night(args.report, run_context(args))["uri"])
    return 0


def cmd_approve(args) -> int:
    import getpass

    from include.matcher.stages import approval
    from include.matcher.stages.validation_report import read_report

    store = storage()
    report = read_report(store.get_bytes(args.report))
    if not report.decision.promote:
        raise UsageError(f"the gate refused {report.version}: there is no promotion to decide")
    state = approval.REJECTED if args.reject else approval.APPROVED
    emit(approval.record_approval(args.report, store, state, args.by or getpass.getuser()).to_json())
    return 0


def cmd_refresh(args) -> int:
    from include.matcher.stages import embeddings

    if bool(args.version_uri) == bool(args.run_id):
        raise UsageError("give exactly one of --version-uri (re-embed with a version) and --run-id (the night's stage)")
    if args.version_uri:
        emit(embeddings.refresh_embeddings(args.version_uri, args.corpus, Locations.from_env(), storage()))
        return 0
    context = run_context(args)
    shards = embeddings.plan_embedding_shards(args.corpus, context)
    parts = [embeddings.embed_shard(shard, context) for shard in shards]
    emit(embeddings.publish(shards, parts, context) if shards else {"published": None, "shards": 0})
    return 0


def cmd_evaluate(args) -> int:
    from include.legacy.labelled_folders import load_labelled_cvs
    from include.matcher.foundations.evaluation import evaluate_model
    from include.matcher.foundations.jobs import load_job_descriptions
    from include.matcher.foundations.models import load_model
    from include.matcher.stages.pairs import split_corpus

    store = (
        storage()
        if any(str(p).startswith("s3://") for p in (args.model, args.data_root, args.jobs_file))
        or args.model == "production"
        else None
    )
    cvs, _ = load_labelled_cvs(args.data_root, store)
    jobs = load_job_descriptions(args.jobs_file, store)
    by_split, _ = split_corpus(cvs, jobs, SplitConfig())
    selected = [cv for rows in by_split.values() for cv in rows] if args.split == "all" else by_split[args.split]
    result = evaluate_model(load_model(args.model, store), selected, jobs)
    # evaluate_model strips each title itself (its primary numbers); "with_title" reads the CVs as they are.
    metrics = result["metrics"] if args.strip_title else result.get("with_title", result)["metrics"]
    emit({"model": args.model, "split": args.split, "strip_title": args.strip_title, **metrics})
    return 0


def cmd_bias_audit(args) -> int:
    from include.legacy.labelled_folders import load_labelled_cvs
    from include.matcher.foundations.audit_names import load_audit_names
    from include.matcher.foundations.jobs import load_job_descriptions
    from include.matcher.foundations.models import load_model
    from include.matcher.stages import bias_audit

    if args.audit_names_per_group == 0:
        raise UsageError("--audit-names-per-group 0 turns the audit off; give 1 to 4 names per group")
    store = storage()
    locations = Locations.from_env()
    gate = GateConfig.from_mapping(vars(args))
    if args.data_root:
        cvs, _ = load_labelled_cvs(args.data_root, store if args.data_root.startswith("s3://") else None)
        jobs_file = args.jobs_file or locations.jobs_file
        jobs = load_job_descriptions(jobs_file, store if jobs_file.startswith("s3://") else None)
        where = args.data_root
    else:
        cvs, jobs, where = bias_audit.latest_held_out(locations, store)
    found = bias_audit.audit_held_out(
        {"candidate": load_model(args.model, store)},
        cvs,
        jobs,
        gate,
        load_audit_names(args.names),
        placements=PLACEMENTS if args.placement == "all" else (args.placement,),
        model_only=args.model_only,
    )
    if found is None:
        raise LookupError(f"no CV in {where} has a category the jobs file describes")
    print(f"bias audit of {args.model} on {where}", file=sys.__stdout__)
    print(bias_audit.table(found), file=sys.__stdout__, flush=True)
    if args.json:
        emit({"model": args.model, **bias_audit.headline(found)})
    return 0


def cmd_erase(args) -> int:
    from include.matcher.stages.erasure import erase, submit_request

    if not args.key and not args.content_hash:
        raise UsageError("give --key or --content-hash")
    locations, store = Locations.from_env(), storage()
    if args.submit:
        uri = submit_request(args.key, args.content_hash, locations, store)
        print(
            "carry it out with the matcher_erasure DAG (its `request` param), or: "
            f'airflow dags trigger matcher_erasure --conf \'{{"request": "{uri}"}}\'',
            file=sys.stderr,
        )
        emit(uri)
        return 0
    receipt = erase(
        args.key, args.content_hash, locations, store, dry_run=args.dry_run, keep_raw=args.keep_raw, by=args.by
    )
    for change in receipt["changes"]:
        print(f"{'would ' if args.dry_run else ''}{change['action']} {change['uri']}", file=sys.__stdout__)
    for value in receipt["not_found_values"]:  # the operator's own words back to them, never stored
        print(f"not found: {value} (no ledger entry, raw file or record names it)", file=sys.stderr)
    if receipt["nothing_left"]:
        print("nothing found to erase", file=sys.__stdout__)
    fields = ("id", "dry_run", "objects", "records_removed", "by_area", "cvs_found", "not_found", "nothing_left")
    emit({k: receipt[k] for k in fields})
    return ERASURE_FOUND_NOTHING if receipt["not_found"] else 0


# An erasure that found nothing of a key or hash it was given: misspelt, never ingested, or erased before.
ERASURE_FOUND_NOTHING = 3


def cmd_housekeeping(args) -> int:
    from include.matcher.stages.housekeeping import housekeep

    found = housekeep(Locations.from_env(), storage(), dry_run=args.dry_run)
    for kind, uris in found.pop("deleted").items():
        for uri in uris:
            print(f"{'would delete' if args.dry_run else 'deleted'} ({kind}) {uri}", file=sys.__stdout__)
    emit(found)
    return 0


def cmd_rollback(args) -> int:
    from include.matcher.stages.operations import rollback_and_refresh

    locations, store = Locations.from_env(), storage()
    emit(rollback_and_refresh(args.version, locations, store, refresh=not args.skip_refresh))
    return 0


def cmd_match(args) -> int:
    from include.matcher.serving.matcher import VectorMatcher

    if args.job:
        from include.matcher.foundations.documents import Rejected, extract_text

        path = Path(args.job)
        if not path.is_file():
            raise FileNotFoundError(f"no job description file at {str(path)!r}")
        try:
            text = extract_text(path.read_bytes(), path.name).text
        except Rejected as rejected:
            raise ValueError(f"cannot read {str(path)!r}: {rejected}") from rejected
    else:
        text = args.text
    from include.matcher.serving.usage_log import search_log

    matcher = VectorMatcher(model_name="production", storage=storage())
    matches = matcher.top_candidates(text, k=args.top, category=args.category, user=args.user)
    search_log(matcher.storage, matcher.locations).flush()
    if args.json:
        for match in matches:
            emit(vars(match))
        return 0
    lines = [
        f"{'rank':>4}  {'score':>6}  {'category':<24}  candidate (model {matches[0].model_version if matches else '-'})"
    ]
    lines += [f"{rank:>4}  {m.score:6.3f}  {str(m.category):<24}  {m.id}" for rank, m in enumerate(matches, 1)]
    print("\n".join(lines) if matches else "no stored candidate matches", file=sys.__stdout__)
    return 0


def cmd_settings(args) -> int:
    print(environment_table() if args.environment else settings_table(), file=sys.__stdout__)
    return 0


def cmd_production(args) -> int:
    from include.matcher.foundations.pointers import read_current, read_production

    locations, store = Locations.from_env(), storage()
    from include.matcher.stages.erasure import production_trained_on_erased

    emit(
        {
            "production": (production := read_production(store, locations.registry)) and production.to_json(),
            "embeddings": read_current(store, locations.embeddings),
            "trained_on_erased_data": production_trained_on_erased(locations, store),
        }
    )
    return 0


def cmd_last_run(args) -> int:
    from include.matcher.pages.summary import describe_last_run

    print(describe_last_run(Locations.from_env(), storage()), file=sys.__stdout__)
    return 0
