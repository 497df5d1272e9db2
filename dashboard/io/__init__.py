"""Reading and checking data: loading files, column roles, validation, wide-to-long reshape,
dates and the outcome's kind.

Pure (no Streamlit); the upload widgets that use it are in :mod:`dashboard.views.upload`.
"""
