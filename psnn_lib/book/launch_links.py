"""A Sphinx extension of the staged book: launch buttons only on the notebook pages.

A launch button (Binder, :mod:`.site`) opens ``notebooks/<name>.ipynb`` of the repository, which
jupytext pairs with its MyST source there (``binder/postBuild``). The claims page is a notebook
too, but ``psnn site`` generates it and the repository has no such file: its buttons are removed.
"""
from __future__ import annotations

from typing import Any, Optional

from docutils import nodes
from sphinx.application import Sphinx


def drop_launch_buttons(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                        doctree: Optional[nodes.document]) -> None:
    """Remove the launch buttons from every page that is not ``notebooks/<name>``."""
    if not pagename.startswith("notebooks/") and "header_buttons" in context:
        context["header_buttons"] = [b for b in context["header_buttons"] if b.get("label") != "launch-buttons"]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", drop_launch_buttons, priority=502)  # after sphinx-book-theme adds them (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
