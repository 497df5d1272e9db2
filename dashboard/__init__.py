"""Dashboard helpers: session-state keys, cached calls, figures and small render helpers.

The pure modules (``loading``, ``roles``, ``validation``, ``reshape``, ``figures``, ``jobs``,
``work``) import no Streamlit; ``state``, ``cached``, ``upload``, ``widgets``, ``menu``,
``sidebar`` and ``jobs_view`` hold the Streamlit glue. Long work (fits, the ladder, the
bootstrap, profiles, Teach repeats) runs through one job runner: ``jobs`` (the runner),
``work`` (the computations with progress) and ``jobs_view`` (per session: start, progress,
Cancel, collect).
"""
