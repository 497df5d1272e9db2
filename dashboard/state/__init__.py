"""Session state and work behind the pages: the keys and persistence of
``st.session_state``, the fitted-model records, the cached lmm_core calls and the job runner
that runs long work off the script thread.
"""
