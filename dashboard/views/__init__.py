"""Streamlit helpers the pages share: menu and sidebar, widgets, help tooltips, model and
inference panels, job progress, upload and the page CSS.
"""
