"""The bottom layer of the dashboard: constants, number formatting and markup escaping.

Pure (no Streamlit, no plotly); every other dashboard package may import it.
"""
