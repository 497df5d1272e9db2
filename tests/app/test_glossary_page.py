"""Glossary page in AppTest: every help entry listed, search filters; metrics carry help."""

from __future__ import annotations

from app import PAGES
from dashboard.help.texts import ENTRIES, TOPICS, search
from tests.app.conftest import texts

GLOSSARY = "pages/glossary.py"


def _glossary(app):
    app.switch_page(GLOSSARY).run()
    assert not app.exception
    return app


def _shown_terms(at) -> set[str]:
    body = texts(at.markdown)
    return {e.term for e in ENTRIES.values() if f"**{e.term}**:" in body}


def test_glossary_is_in_the_menu():
    assert (GLOSSARY, "Glossary") in PAGES


def test_every_entry_is_listed_under_its_topic(app):
    at = _glossary(app)
    assert at.title[0].value == "Glossary"
    assert _shown_terms(at) == {e.term for e in ENTRIES.values()}
    assert [s.value for s in at.subheader] == list(TOPICS)
    body = texts(at.markdown)
    for e in ENTRIES.values():
        assert e.what in body and e.how in body
    assert f"{len(ENTRIES)} entries" in texts(at.caption)


def test_search_filters_the_entries(app):
    at = _glossary(app)
    at.text_input(key="glossary_search").input("shrinkage").run()
    assert not at.exception
    expected = {e.term for e in search("shrinkage")}
    assert _shown_terms(at) == expected
    assert "Shrinkage factor (share kept)" in expected and "AIC" not in expected
    assert f"{len(expected)} of {len(ENTRIES)} entries match" in texts(at.caption)
    assert "Subject estimates and shrinkage" in [s.value for s in at.subheader]

    at.text_input(key="glossary_search").input("Akaike").run()  # an alias finds the term
    assert _shown_terms(at) == {"AIC"}
    assert [s.value for s in at.subheader] == ["Fitting"]

    at.text_input(key="glossary_search").input("no-such-word").run()
    assert not at.exception
    assert _shown_terms(at) == set()
    assert "No entry contains 'no-such-word'" in texts(at.info)

    at.text_input(key="glossary_search").input("").run()
    assert len(_shown_terms(at)) == len(ENTRIES)


def test_metrics_on_data_and_model_pages_have_help(app):
    """At run time, too: every metric shown on the Data page and after a fit has a tooltip."""
    helps = {m.label: m.proto.help for m in app.metric}
    assert len(helps) == 5 and all(h.strip() for h in helps.values()), helps
    app.switch_page("pages/model.py").run()
    app.button(key="model_fit").click().run()
    assert not app.exception
    helps = {m.label: m.proto.help for m in app.metric}
    assert {"AIC", "BIC", "logLik", "REML criterion", "Observations"} <= set(helps)
    assert all(h.strip() for h in helps.values()), helps
    assert ENTRIES["aic"].what in helps["AIC"]
