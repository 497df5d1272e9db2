"""The help registry: complete entries, every key used in the source exists, every metric
has a help text (checked on the source with ast, so a new page cannot forget one)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dashboard.help import texts as ht

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "dashboard").rglob("*.py")]
)
#: functions whose string-literal arguments are help keys
KEY_FUNCTIONS = {"help_text", "entry", "column", "text_column", "how_to_read", "guide_markdown"}

#: terms the app must explain (issue 6)
REQUIRED = [
    "estimate", "std_error", "t_value", "df", "df_satterthwaite", "df_kenward_roger", "df_wald",
    "p_value", "confidence_interval", "re_sd", "re_variance", "re_correlation", "residual_sd",
    "reml_vs_ml", "loglik", "deviance", "reml_criterion", "aic", "bic", "lrt", "chibar",
    "singular_fit", "convergence", "icc", "icc_time", "r2_marginal", "r2_conditional", "blup",
    "conditional_sd", "shrinkage", "shrinkage_factor", "own_estimate", "population_prediction",
    "subject_prediction", "confidence_vs_prediction", "band_fixed", "band_patient",
    "band_prediction", "profile_ci", "bootstrap", "residual_conditional", "residual_marginal",
    "qq_plot", "visits_per_subject", "missing_values", "random_intercept", "random_slope",
    "nested_vs_crossed", "uncorrelated_terms", "formula_grammar", "observations", "subjects",
    "design_effect",
]  # fmt: skip


def _trees():
    for path in SOURCES:
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


# --------------------------------------------------------------------------- the registry
@pytest.mark.parametrize("key", list(ht.ENTRIES))
def test_every_entry_is_complete(key):
    e = ht.ENTRIES[key]
    assert e.key == key
    assert e.term.strip() and e.what.strip() and e.how.strip(), key
    assert e.topic in ht.TOPICS, (key, e.topic)
    assert e.what.rstrip().endswith((".", ")")), f"{key}: 'what' should be a sentence"
    assert all(a.strip() for a in e.aliases), key
    text = ht.help_text(key)
    assert e.term in text and e.what in text and e.how in text
    assert (e.formula in text) if e.formula else "Formula" not in text


def test_required_terms_are_explained():
    missing = [k for k in REQUIRED if k not in ht.ENTRIES]
    assert not missing, f"no help entry for {missing}"
    assert len(ht.ENTRIES) >= 60


def test_terms_are_unique_and_every_topic_is_used():
    terms = [e.term.lower() for e in ht.ENTRIES.values()]
    assert len(terms) == len(set(terms))
    assert set(ht.TOPICS) == {e.topic for e in ht.ENTRIES.values()}


def test_unknown_key_raises_key_error():
    with pytest.raises(KeyError, match="no help text for 'nope'"):
        ht.help_text("nope")


def test_search_and_grouping():
    assert ht.search("") == list(ht.ENTRIES.values())
    assert [e.key for e in ht.search("AKAIKE")] == ["aic"]  # alias, case-insensitive
    keys = {e.key for e in ht.search("shrinkage factor")}  # every word must occur
    assert "shrinkage_factor" in keys and "aic" not in keys
    assert ht.search("zzz-no-such-term") == []
    grouped = ht.by_topic(ht.search("band"))
    assert list(grouped) == [t for t in ht.TOPICS if t in grouped]  # topic order kept
    assert {e.key for e in grouped["Prediction"]} >= {"band_fixed", "band_patient"}
    assert sum(map(len, ht.by_topic().values())) == len(ht.ENTRIES)


# --------------------------------------------------------------------------- the source
def test_every_help_key_used_in_the_source_exists():
    used, unknown = 0, []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _name(node.func) in KEY_FUNCTIONS):
                continue
            args = node.args[:1] if _name(node.func) != "how_to_read" else node.args
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    used += 1
                    if arg.value not in ht.ENTRIES:
                        unknown.append(f"{_where(path, node)}: {arg.value!r}")
    assert not unknown, "help keys without an entry in dashboard/help/texts.py:\n" + "\n".join(
        unknown
    )
    assert used >= 50  # the scan does find the pages' keys


def test_df_help_keys_exist():
    from dashboard.views.inference import DF_HELP, DF_METHODS

    assert set(DF_HELP) == set(DF_METHODS.values())
    assert all(k in ht.ENTRIES for k in DF_HELP.values())


def test_every_metric_has_help():
    """Every ``st.metric`` / ``col.metric`` call in app.py, pages/ and dashboard/ passes help=."""
    found, missing = 0, []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "metric":
                continue
            found += 1
            if not any(kw.arg == "help" or kw.arg is None for kw in node.keywords):
                label = node.args[0] if node.args else None
                shown = ast.unparse(label) if label is not None else "?"
                missing.append(f"{_where(path, node)}: metric {shown} has no help=")
    assert not missing, (
        "these metrics have no help text; pass help=help_text(<key>) (add the key to "
        "dashboard/help/texts.py):\n" + "\n".join(missing)
    )
    assert found >= 12
