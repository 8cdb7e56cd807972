"""Small HTML builders that escape every text they are given (results may carry server error bodies).

Everything is `markupsafe.Markup`: a plain string passed as a child or an attribute value is
escaped, a `Markup` (built here, or a figure's SVG) is kept as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from markupsafe import Markup, escape

Html = Markup
EMPTY = Markup("")


def tag(name: str, *children: object, **attrs: object) -> Markup:
    """`<name attrs>children</name>`; `class_` writes `class`, `data_x` writes `data-x`; None and
    False attributes and None children are left out."""
    attributes = EMPTY.join(
        Markup(' {}="{}"').format(key.rstrip("_").replace("_", "-"), value)
        for key, value in attrs.items() if value is not None and value is not False
    )
    return Markup("<{0}{1}>{2}</{0}>").format(Markup(name), attributes, join(children))


def join(parts: Iterable[object], separator: object = EMPTY) -> Markup:
    """The parts (escaped unless Markup) one after another; None parts are left out."""
    return escape(separator).join(escape(part) for part in parts if part is not None)


def verdict_badge(verdict: str) -> Markup:
    """The verdict in capitals, coloured by its CSS class."""
    return tag("span", verdict.upper(), class_=f"badge v-{verdict}")


def table(headers: Sequence[object], rows: Iterable[Sequence[object]], *, numeric: Sequence[int] = (),
          class_: str | None = None) -> Markup:
    """A table (scrolling sideways when wider than the page); the columns at the `numeric`
    positions are right-aligned."""
    right = set(numeric)
    head = tag("tr", *(tag("th", h, class_="num" if i in right else None) for i, h in enumerate(headers)))
    body = [tag("tr", *(tag("td", cell, class_="num" if i in right else None) for i, cell in enumerate(row)))
            for row in rows]
    return tag("div", tag("table", tag("thead", head), tag("tbody", *body), class_=class_), class_="scroll")


def key_values(pairs: Iterable[tuple[object, object]]) -> Markup:
    """A two-column table of names and values."""
    return tag("table", tag("tbody", *(tag("tr", tag("th", k), tag("td", v)) for k, v in pairs)), class_="kv")


def link(label: object, href: str | None) -> Markup:
    """A link, or the label with '(missing)' when there is nothing to link to."""
    if href is None:
        return tag("span", label, " (missing)", class_="missing")
    return tag("a", label, href=href)


def figure(svg: str | None, caption: object = None, problem: object = None) -> Markup:
    """A figure holding `svg` (trusted: made by `plotting.svg_fragment`), or a note saying why there is none."""
    if svg is None:
        return tag("p", problem, class_="note") if problem else EMPTY
    return tag("figure", Markup(svg), tag("figcaption", caption) if caption else None)


def bullet_list(items: Iterable[object], class_: str | None = None) -> Markup:
    """A list of the items (nothing when there are none)."""
    items = [item for item in items if item is not None]
    return tag("ul", *(tag("li", item) for item in items), class_=class_) if items else EMPTY
