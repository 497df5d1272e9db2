"""The link codec (dashboard.analysis.link_codec): round trip and hostile links."""

from __future__ import annotations

import pytest

from dashboard.analysis import link_codec as codec

EXAMPLES = ["sleepstudy", "orthodont", "infections"]
TOKEN = "A" * 20 + "-_" + "b9" * 10 + "z"  # 43 URL-safe characters


def _params(view: codec.LinkView) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in codec.encode(view).items()}


def test_round_trip_of_an_example_with_lmms_and_a_glmm():
    view = codec.LinkView(
        dataset="sleepstudy",
        models=(
            codec.LinkModel("Reaction ~ Days + (1 | Subject)", "random intercept", True),
            codec.LinkModel("Reaction ~ Days + (Days | Subject)", "random slope", False),
            codec.LinkModel("y ~ t + (1 | id)", "logistic", False, "binomial", "probit", 7),
        ),
        active=1,
        reml=False,
    )
    back = codec.decode(_params(view), EXAMPLES)
    assert back == view
    assert back.problems == ()


def test_round_trip_of_an_upload_token_and_a_label_with_a_semicolon():
    view = codec.LinkView(upload=TOKEN, models=(codec.LinkModel("y ~ x + (1|g)", "a; b"),))
    back = codec.decode(_params(view), EXAMPLES)
    assert back.upload == TOKEN and back.dataset is None
    assert back.models[0].label == "a, b" and back.models[0].formula == "y ~ x + (1|g)"


def test_the_encoded_link_names_only_the_example_and_formulas():
    params = codec.encode(codec.LinkView(dataset="orthodont", reml=True))
    assert params == {"ds": "orthodont", "reml": "1"}


def test_no_parameters_is_the_empty_view():
    view = codec.decode({"embed": ["true"]}, EXAMPLES)
    assert view.empty and view.problems == ()


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"ds": ["../../etc/passwd"]}, "unknown example"),
        ({"ds": ["nosuchdata"]}, "unknown example"),
        ({"up": ["short"]}, "upload token is not valid"),
        ({"up": ["A" * 42 + "!"]}, "upload token is not valid"),
        ({"m": ["reml;x;y ~ __import__('os').system('id')"]}, "does not parse"),
        ({"m": ["reml;x;y ~ eval(x) + (1|g)"]}, "does not parse"),
        ({"m": ["reml;x;y ~ lambda: 1"]}, "does not parse"),
        ({"m": ["just a formula y ~ x"]}, "options;label;formula"),
        ({"m": ["gamma-log-q1;x;y ~ x + (1|g)"]}, "unknown model options"),
        ({"m": ["binomial-log-q1;x;y ~ x + (1|g)"]}, "has no link"),
        ({"m": ["binomial-logit-q99;x;y ~ x + (1|g)"]}, "quadrature points"),
        ({"m": ["reml;x;" + "y ~ x" + " + x" * 1000]}, "longer than"),
        ({"m": ["reml;x;y ~ " + "(" * 5000 + "x" + ")" * 5000]}, "longer than"),
        ({"a": ["7"], "m": ["reml;x;y ~ x + (1|g)"]}, "active model"),
        ({"reml": ["yes"]}, "neither 0 nor 1"),
        ({"ds": ["x" * 100_000]}, "too long"),
    ],
)
def test_a_hostile_or_broken_link_says_why_and_never_raises(params, words):
    view = codec.decode(params, EXAMPLES)
    assert any(words in p for p in view.problems), view.problems
    assert view.dataset is None and view.upload is None


def test_a_deeply_nested_formula_under_the_length_limit_is_refused_in_words():
    text = "reml;x;y ~ " + "(" * 900 + "x" + ")" * 900
    view = codec.decode({"m": [text]}, EXAMPLES)
    assert view.models == () and len(view.problems) == 1


def test_too_many_models_keep_the_first_ones():
    models = [f"reml;m{i};Reaction ~ Days + (1 | Subject)" for i in range(40)]
    view = codec.decode({"ds": ["sleepstudy"], "m": models}, EXAMPLES)
    assert len(view.models) == codec.MAX_MODELS
    assert [m.label for m in view.models] == [f"m{i}" for i in range(codec.MAX_MODELS)]
    assert any("first" in p for p in view.problems)


def test_a_bad_model_is_dropped_and_the_others_kept():
    view = codec.decode(
        {"ds": ["sleepstudy"], "m": ["reml;ok;Reaction ~ Days + (1|Subject)", "oops"]}, EXAMPLES
    )
    assert view.dataset == "sleepstudy" and [m.label for m in view.models] == ["ok"]
    assert len(view.problems) == 1 and "Model 2" in view.problems[0]
