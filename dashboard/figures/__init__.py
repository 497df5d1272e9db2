"""Plotly figures: pure functions returning ``go.Figure``, no Streamlit.

:mod:`dashboard.figures.style` holds the shared look (palette, template, titles, colours,
room for the toolbar); one module per page or theme builds the figures.
"""
