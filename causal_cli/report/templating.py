"""The Jinja2 environments of the Markdown and HTML reports (templates are package data in ``templates/``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"


def md_cell(value) -> str:
    """A Markdown table cell: one line, ``|`` escaped, so data values cannot break the table."""
    return " ".join(str(value).split()).replace("|", "\\|")


def md_sentence(sentence) -> str:
    return "".join(f"**{text}**" if bold else text for text, bold in sentence.parts)


def _html_escape(value):
    """Escape as :func:`html.escape` does (quotes too), so pages match the escaping of earlier versions."""
    import html

    from markupsafe import Markup

    if isinstance(value, Markup):  # a macro's output, already escaped
        return value
    return Markup(html.escape(str(value)))


@lru_cache(maxsize=2)
def environment(html: bool):
    """HTML autoescapes every value (column names and reasons come from data files); Markdown does not."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        **({"finalize": _html_escape} if html else {}),
    )
    env.filters.update(md_cell=md_cell, md_sentence=md_sentence)
    return env


def render(name: str, **context) -> str:
    return environment(name.endswith(".html.j2")).get_template(name).render(**context)
