"""What the pages show, computed: model summaries, the model builder's formulas, the
comparison of fitted models, the random-effects ladder and the teaching lab's texts.

Pure (no Streamlit): functions of fitted results and choices, tested without an app.
"""
