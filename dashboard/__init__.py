"""Dashboard helpers: session-state keys, cached calls, figures and small render helpers.

The pure modules (``loading``, ``roles``, ``validation``, ``reshape``, ``figures``) import no
Streamlit; ``state``, ``cached``, ``upload`` and ``widgets`` hold the Streamlit glue.
"""
