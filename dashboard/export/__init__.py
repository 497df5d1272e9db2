"""Everything the Export page writes: R, Python and SAS code, result tables, the HTML
report and its figures. Pure (no Streamlit).
"""
