"""Stage 1, formula text to a model specification (standard library only, no data).

- :mod:`~lmm_core.formula.grammar`: the syntax tree, tokenizer and parser;
- :mod:`~lmm_core.formula.terms`: R's term algebra, :func:`~lmm_core.formula.terms.parse_formula`;
- :mod:`~lmm_core.formula.spec`: the parsed model (``ModelSpec``, ``TermList``, ``RandomSpec``);
- :mod:`~lmm_core.formula.quoting`: how column names and expressions are written as text.

Imports only :mod:`lmm_core.errors`.
"""
