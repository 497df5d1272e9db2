"""Plain-language explanations of every number and term in the app. No Streamlit here.

One registry, :data:`ENTRIES`, read from the data file ``entries.toml`` next to it and keyed by a
stable id (``"aic"``, ``"blup"``...). Each entry has the term, one sentence saying what it is,
how to read it (what a large or small value means, the usual pitfalls) and, where it helps, a
formula in plain text. Pages never write these texts themselves: they pass
``help=help_text("aic")`` to a widget or metric, column help through
:func:`dashboard.views.help.column`, or show a "How to read this" expander
(:func:`dashboard.views.help.how_to_read`). The Glossary page lists every entry, grouped by
:data:`TOPICS`.

The audience is clinicians and students meeting mixed models for the first time: short
sentences, no Greek unless it is also said in words, and the trap to avoid named.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENTRIES",
    "TOPICS",
    "HelpEntry",
    "by_topic",
    "entry",
    "help_text",
    "search",
]

#: The help texts themselves: one ``[[entry]]`` table per term.
DATA_FILE = Path(__file__).with_name("entries.toml")


@dataclass(frozen=True)
class HelpEntry:
    """One explained term.

    Attributes
    ----------
    key
        Stable id used by the pages (``help_text(key)``).
    term
        The name shown to users.
    topic
        One of :data:`TOPICS`.
    what
        One sentence: what it is.
    how
        How to read it: what large or small values mean, typical pitfalls.
    formula
        Optional formula in plain text.
    aliases
        Other names users may search for (R output names, synonyms).
    """

    key: str
    term: str
    topic: str
    what: str
    how: str
    formula: str = ""
    aliases: tuple[str, ...] = ()

    def text(self) -> str:
        """Markdown for a ``help=`` tooltip or a glossary row."""
        parts = [f"**{self.term}**: {self.what}", f"**How to read it:** {self.how}"]
        if self.formula:
            parts.append(f"**Formula:** `{self.formula}`")
        return "\n\n".join(parts)

    def haystack(self) -> str:
        """Everything the glossary search looks in, lower case."""
        return " ".join(
            [self.key, self.term, self.topic, self.what, self.how, self.formula, *self.aliases]
        ).lower()


_FIELDS = {"key", "term", "topic", "what", "how", "formula", "aliases"}


def _load(path: Path) -> tuple[tuple[str, ...], dict[str, HelpEntry]]:
    """Topics and entries of the data file; ``RuntimeError`` on a duplicated key or a typo."""
    with path.open("rb") as f:
        data = tomllib.load(f)
    entries: dict[str, HelpEntry] = {}
    for raw in data["entry"]:
        unknown = set(raw) - _FIELDS
        if unknown:
            raise RuntimeError(f"{path.name}: {raw.get('key')!r} has unknown fields {unknown}")
        e = HelpEntry(
            key=raw["key"],
            term=raw["term"],
            topic=raw["topic"],
            what=raw["what"],
            how=raw["how"],
            formula=raw.get("formula", ""),
            aliases=tuple(raw.get("aliases", ())),
        )
        if e.key in entries:
            raise RuntimeError(f"{path.name}: duplicate help key {e.key!r}")
        entries[e.key] = e
    return tuple(data["topics"]), entries


#: Glossary sections, in display order, and key -> entry in glossary order within each topic.
TOPICS, ENTRIES = _load(DATA_FILE)


def entry(key: str) -> HelpEntry:
    """The entry ``key``; ``KeyError`` naming the key when there is none."""
    try:
        return ENTRIES[key]
    except KeyError:
        raise KeyError(f"no help text for {key!r}; add it to dashboard/help/entries.toml") from None


def help_text(key: str) -> str:
    """Markdown for a ``help=`` argument: term, what it is, how to read it, formula."""
    return entry(key).text()


def search(query: str) -> list[HelpEntry]:
    """Entries containing every word of ``query`` (case-insensitive); all for a blank query."""
    words = query.lower().split()
    return [e for e in ENTRIES.values() if all(w in e.haystack() for w in words)]


def by_topic(entries: list[HelpEntry] | None = None) -> dict[str, list[HelpEntry]]:
    """``entries`` (default: all) grouped by topic in :data:`TOPICS` order, empty topics out."""
    entries = list(ENTRIES.values()) if entries is None else entries
    grouped = {t: [e for e in entries if e.topic == t] for t in TOPICS}
    return {t: es for t, es in grouped.items() if es}
