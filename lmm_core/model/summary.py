"""A text summary of a fit in the layout of lme4's ``summary(fit)``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def format_summary(result) -> str:
    """Return the lme4-style summary of an :class:`lmm_core.model.results.LMMResult`."""
    method = "REML" if result.reml else "maximum likelihood"
    lines = [f"Linear mixed model fit by {method}", f"Formula: {result.formula}", ""]
    if result.reml:
        lines.append(f"REML criterion at convergence: {result.objective:.4f}")
    else:
        lines.append(
            f"     AIC      BIC   logLik deviance\n"
            f"{result.aic:8.2f} {result.bic:8.2f} {result.loglik:8.2f} {result.objective:8.2f}"
        )
    scaled = result.residuals / result.sigma
    q = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1])
    lines += [
        "",
        "Scaled residuals:",
        "     Min       1Q   Median       3Q      Max",
        " ".join(f"{v:8.4f}" for v in q),
        "",
        "Random effects:",
    ]
    lines.append(_random_effects_block(result))
    groups = ", ".join(f"{g}, {n}" for g, n in result.ngroups.items())
    lines.append(f"Number of obs: {result.nobs}, groups:  {groups}")
    lines += ["", "Fixed effects:"]
    table = result.fixef_table(df_method=None)[["estimate", "std_error", "t_value"]]
    table.columns = ["Estimate", "Std. Error", "t value"]
    lines.append(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if result.messages:
        lines += [""] + [f"Note: {m}" for m in result.messages]
    if not result.converged:
        lines.append("Warning: the convergence check did not pass (see messages).")
    return "\n".join(lines)


def _random_effects_block(result) -> str:
    rows = []
    vc = result.varcorr_table()
    for label in dict.fromkeys(vc["group"]):
        part = vc[vc["group"] == label]
        variances = part[part["var2"].isna()]
        covs = part[part["var2"].notna()]
        for i, (_, row) in enumerate(variances.iterrows()):
            corr = covs[covs["var2"] == row["var1"]]["sdcor"].tolist()
            rows.append(
                {
                    "Groups": label if i == 0 else "",
                    "Name": "" if pd.isna(row["var1"]) else row["var1"],
                    "Variance": f"{row['vcov']:.4f}",
                    "Std.Dev.": f"{row['sdcor']:.4f}",
                    "Corr": " ".join(f"{c:5.2f}" for c in corr),
                }
            )
    frame = pd.DataFrame(rows)
    return frame.to_string(index=False)
