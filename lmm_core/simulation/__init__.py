"""Stage 5, data from a known truth: the trial simulator and the teaching lab.

- :mod:`~lmm_core.simulation.trial`: a seeded multi-center longitudinal trial;
- :mod:`~lmm_core.simulation.teaching_truth`: the teaching lab's truth (straight or bent);
- :mod:`~lmm_core.simulation.teaching_curves`: its curves, the fitted shape of time, the
  average slope;
- :mod:`~lmm_core.simulation.teaching`: one study drawn, fitted and set against its truth;
- :mod:`~lmm_core.simulation.teaching_shrinkage`: each subject's own slope against the model's;
- :mod:`~lmm_core.simulation.teaching_repeat`: many studies, the sampling distribution.

The top layer of the engine: imports every stage below it.
"""
