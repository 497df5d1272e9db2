"""The Streamlit app's code below the pages, in packages by what each module is.

Pure (no Streamlit, checked by the contracts in ``.importlinter``): ``base`` (constants,
number formats, markup), ``help`` (help texts), ``io`` (data in), ``figures`` (plotly),
``analysis`` (what pages show, computed) and ``export``. Streamlit: ``state`` (session state,
fit records, cached calls, job runner) and ``views`` (helpers the pages share).
"""
