"""Every page's HTML comes from the Jinja2 templates in ``include/matcher/templates/``, autoescaped: a
value read from the bucket (a run name, a reason, a category) is text on the page, never markup."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from include.matcher.foundations.settings import RETRAINING_DAG_ID

TEMPLATES = Path(__file__).parent.parent / "templates"
STATIC = TEMPLATES / "static"


@cache
def environment():
    from jinja2 import ChainableUndefined, Environment, FileSystemLoader

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        # A field a record may lack (an approval's ``by``) reads as empty, as in the JSON it came from.
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = lambda value, places=3: "-" if value is None else f"{value:.{places}f}"
    env.filters["signed"] = lambda value: "-" if value is None else f"{value:+.3f}"
    env.globals["css"] = (STATIC / "matcher.css").read_text()
    env.globals["dag_id"] = RETRAINING_DAG_ID
    return env


@cache
def text_environment():
    """For text that is not HTML (the model card's Markdown): nothing escaped, the last newline kept."""
    from jinja2 import ChainableUndefined, Environment, FileSystemLoader

    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=False,
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_text_template(name: str, **context) -> str:
    """``templates/<name>`` (Markdown or plain text) rendered with ``context``, unescaped."""
    return text_environment().get_template(name).render(**context)


def render_template(name: str, **context) -> str:
    """``templates/<name>`` rendered with ``context``. ``served`` (default true) adds the Matcher's
    navigation and its script (theme, links into Airflow); a copy kept in the bucket goes without both."""
    context.setdefault("served", True)
    return environment().get_template(name).render(**context)
