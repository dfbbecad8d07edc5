"""The package's folders are its layers (ARCHITECTURE.md): each imports only the ones below it, the
import graph has no cycle, and nothing but the Airflow glue imports Airflow."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from tests.helpers import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "include" / "matcher"
LAYERS = ("foundations", "stages", "serving", "pages")  # bottom to top
ENTRY_POINTS = {"include.matcher", "include.matcher.cli", "include.matcher.python_api", "include.matcher.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in (PROJECT_ROOT / "include").rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[:2] == ["include", "matcher"] and parts[2] in LAYERS else None


def test_every_module_of_the_package_sits_in_a_layer_or_is_an_entry_point():
    loose = [m for m in MODULES if m.startswith("include.matcher") and m not in ENTRY_POINTS and not layer_of(m)]
    assert [m for m in loose if m.rsplit(".", 1)[1] not in LAYERS] == [], loose


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for module, path in MODULES.items():
        own = layer_of(module)
        if own is None:
            continue
        for imported in imports_of(path) & set(MODULES):
            other = layer_of(imported)
            if other is not None and LAYERS.index(other) > LAYERS.index(own):
                wrong.append(f"{module} ({own}) imports {imported} ({other})")
            if imported in ENTRY_POINTS - {"include.matcher"}:
                wrong.append(f"{module} imports the entry point {imported}")
    assert wrong == []


def test_the_import_graph_has_no_cycle():
    graph = {module: imports_of(path) & set(MODULES) - {module, "include.matcher"} for module, path in MODULES.items()}
    done, path_so_far, cycles = set(), [], []

    def visit(module: str) -> None:
        if module in path_so_far:
            cycles.append(path_so_far[path_so_far.index(module) :] + [module])
            return
        if module in done:
            return
        path_so_far.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        path_so_far.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert cycles == []


def test_only_the_airflow_glue_imports_airflow():
    importers = sorted(
        module
        for module, path in MODULES.items()
        if any(name == "airflow" or name.startswith("airflow.") for name in imports_of(path))
    )
    assert importers and all(m.split(".")[:2] == ["include", "airflow_support"] for m in importers), importers


def test_architecture_md_draws_every_module_in_its_layer():
    import re

    drawing = (PROJECT_ROOT / "ARCHITECTURE.md").read_text().split("```", 2)[1]
    drawn, layer = {}, None
    for line in drawing.splitlines():
        heading = re.match(r"\s+(\w+)/\s", line)
        if heading and heading.group(1) in LAYERS:
            layer = heading.group(1)
        if layer:
            drawn.setdefault(layer, set()).update(re.findall(r"[a-z_]+", line))
    missing = [
        module
        for module in MODULES
        if layer_of(module) and module.rsplit(".", 1)[1] not in drawn.get(layer_of(module), set())
    ]
    assert missing == [], "ARCHITECTURE.md's drawing lacks these modules (or shows them in another layer)"


# Each DAG task's stage function: (module under include.matcher.stages, function), named after its task.
STAGE_TASKS = {
    "ingest.find_new_files": ("ingest", "find_new_files"),
    "ingest.check_for_new_data": ("ingest", "check_for_new_data"),
    "parse.plan_shards": ("parse", "plan_shards"),
    "parse.parse_shard": ("parse", "parse_shard"),
    "parse.collect": ("parse", "collect"),
    "train.build_pairs": ("pairs", "build_pairs"),
    "train.fine_tune": ("training", "fine_tune"),
    "validate.evaluate": ("validation", "evaluate"),
    "validate.gate": ("validation", "gate"),
    "promote": ("registry", "promote_night"),
    "refresh_embeddings.plan_embedding_shards": ("embeddings", "plan_embedding_shards"),
    "refresh_embeddings.embed_shard": ("embeddings", "embed_shard"),
    "refresh_embeddings.publish": ("embeddings", "publish"),
}


def test_every_stage_takes_its_input_uris_then_one_run_context():
    import inspect

    for task, (module, name) in STAGE_TASKS.items():
        stage = getattr(importlib.import_module(f"include.matcher.stages.{module}"), name)
        parameters = [p for p in inspect.signature(stage).parameters.values() if p.default is inspect.Parameter.empty]
        assert parameters[-1].name == "context" and parameters[-1].annotation in ("RunContext", "RunContext | None"), (
            task,
            parameters,
        )
        inputs = parameters[:-1]
        assert all(p.name.endswith(("_uri", "_uris")) for p in inputs), (task, [p.name for p in inputs])


def test_every_dag_task_body_is_one_run_stage_call_of_its_stage():
    source = (PROJECT_ROOT / "dags" / "matcher_retraining.py").read_text()
    tasks = {
        node.name: node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef)
        and any("task" in ast.unparse(decorator) for decorator in node.decorator_list)
    }
    for task, (module, name) in STAGE_TASKS.items():
        body = tasks[task.rsplit(".", 1)[-1]]
        calls = [c for c in ast.walk(body) if isinstance(c, ast.Call) and ast.unparse(c.func) == "run_stage"]
        assert len(calls) == 1, task
        called = ast.unparse(calls[0].args[0])
        assert called == f"{module}.{name}" or (task == "validate.evaluate" and called == "evaluate_this_run"), (
            task,
            called,
        )


def test_every_error_the_package_defines_has_one_root_that_says_its_kind():
    """A caller tells bad input, a missing object, a conflict and an S3 outage apart by catching
    ``MatcherError`` and reading its kind (``include/matcher/foundations/errors.py``)."""
    from include.matcher.foundations.errors import MatcherError

    defined = []
    for module in sorted(name for name in MODULES if name.startswith("include.matcher") and "__main__" not in name):
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == module:
                defined.append(value)
    assert len(defined) >= 15
    strays = [f"{cls.__module__}.{cls.__qualname__}" for cls in defined if not issubclass(cls, MatcherError)]
    assert strays == [], f"errors outside the MatcherError tree: {strays}"
    assert {cls.status for cls in defined} <= {400, 404, 409, 500, 503}


def test_no_s3_key_is_spelled_outside_layout():
    """``foundations/layout.py`` alone names the pipeline's folders and files: elsewhere a key is built
    from its functions, so a key cannot drift between the writer and a reader (or an erasure, or
    retention). Caught: a ``join_uri`` with a literal part, or a literal path holding a name of
    layout's (``/manifest.json``, ``texts/``...). Prose (help texts), the deployment's default URIs and
    Airflow's UI URLs are not keys."""
    import re

    layout_file = PACKAGE / "foundations" / "layout.py"
    names = set()
    for node in ast.walk(ast.parse(layout_file.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names |= {part for part in re.split(r"[/{}]", node.value) if re.fullmatch(r"[a-z_][a-z0-9_.-]{2,}", part)}
    names -= {"str", "uri"}
    sources = [*PACKAGE.rglob("*.py"), *(PROJECT_ROOT / "plugins").rglob("*.py"), *(PROJECT_ROOT / "dags").glob("*.py")]
    airflow_urls = {PACKAGE / "pages" / "night_state.py"}
    spelled = []
    for path in sources:
        if path in (layout_file, PACKAGE / "foundations" / "uris.py"):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        where = path.relative_to(PROJECT_ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("join_uri"):
                if any(isinstance(arg, ast.Constant) and isinstance(arg.value, str) for arg in node.args):
                    spelled.append(f"{where}:{node.lineno} {ast.unparse(node)[:80]}")
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and "/" in node.value
                and not re.search(r"\s", node.value)
                and not node.value.startswith(("s3://", "~"))
                and path not in airflow_urls
                and set(node.value.split("/")) & names
            ):
                spelled.append(f"{where}:{node.lineno} {node.value!r}")
    assert spelled == [], "S3 keys spelled outside foundations/layout.py:\n" + "\n".join(spelled)
