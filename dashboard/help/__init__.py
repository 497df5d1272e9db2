"""Help texts: the glossary entries in ``entries.toml`` and the module that reads them.
Pure (no Streamlit); :mod:`dashboard.views.help` shows them.
"""
