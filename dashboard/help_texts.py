"""Plain-language explanations of every number and term in the app. No Streamlit here.

One registry, :data:`ENTRIES`, keyed by a stable id (``"aic"``, ``"blup"``...). Each entry has
the term, one sentence saying what it is, how to read it (what a large or small value means,
the usual pitfalls) and, where it helps, a formula in plain text. Pages never write these
texts themselves: they pass ``help=help_text("aic")`` to a widget or metric, column help
through :func:`dashboard.help_view.column`, or show a "How to read this" expander
(:func:`dashboard.help_view.how_to_read`). The Glossary page lists every entry, grouped by
:data:`TOPICS`.

The audience is clinicians and students meeting mixed models for the first time: short
sentences, no Greek unless it is also said in words, and the trap to avoid named.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ENTRIES",
    "TOPICS",
    "HelpEntry",
    "by_topic",
    "entry",
    "help_text",
    "search",
]

#: Glossary sections, in display order.
TOPICS: tuple[str, ...] = (
    "Data",
    "Model formula",
    "Fixed effects",
    "Random effects",
    "Fitting",
    "Comparing models",
    "Variance explained",
    "Uncertainty and intervals",
    "Subject estimates and shrinkage",
    "Prediction",
    "Diagnostics",
    "Plots",
    "Simulation",
)


@dataclass(frozen=True)
class HelpEntry:
    """One explained term.

    Attributes
    ----------
    key
        Stable id used by the pages (``help_text(key)``).
    term
        The name shown to users.
    topic
        One of :data:`TOPICS`.
    what
        One sentence: what it is.
    how
        How to read it: what large or small values mean, typical pitfalls.
    formula
        Optional formula in plain text.
    aliases
        Other names users may search for (R output names, synonyms).
    """

    key: str
    term: str
    topic: str
    what: str
    how: str
    formula: str = ""
    aliases: tuple[str, ...] = ()

    def text(self) -> str:
        """Markdown for a ``help=`` tooltip or a glossary row."""
        parts = [f"**{self.term}**: {self.what}", f"**How to read it:** {self.how}"]
        if self.formula:
            parts.append(f"**Formula:** `{self.formula}`")
        return "\n\n".join(parts)

    def haystack(self) -> str:
        """Everything the glossary search looks in, lower case."""
        return " ".join(
            [self.key, self.term, self.topic, self.what, self.how, self.formula, *self.aliases]
        ).lower()


def _e(key, term, topic, what, how, formula="", aliases=()) -> HelpEntry:
    return HelpEntry(key, term, topic, what, how, formula, tuple(aliases))


# One entry reads best with its key, term and topic on one line.
# fmt: off
_LIST: list[HelpEntry] = [
    # ------------------------------------------------------------------ Data
    _e(
        "long_format", "Long format", "Data",
        "A table with one row per measurement (visit): who was measured, when, and the value.",
        "Mixed models need this layout. A table with one column per visit (wide format) is "
        "converted on the Data page. Subjects may have different numbers of visits at "
        "different times; that is fine.",
        aliases=("wide format", "one row per visit", "tidy data"),
    ),
    _e(
        "column_roles", "Column roles", "Data",
        "Which column is the subject id, the time, the outcome, an optional cluster and the "
        "covariates.",
        "Guessed from the names and values; check them, because every later page relies on "
        "them. A subject id stored as a number is still an id, not a quantity.",
        aliases=("subject id", "outcome", "covariate", "time column"),
    ),
    _e(
        "observations", "Observations", "Data",
        "The number of rows (single measurements) in the data or used by the model.",
        "A model uses only rows with a value in every column of its formula, so it may use "
        "fewer rows than the table has. Many observations do not make up for few subjects: "
        "the information about differences between subjects grows with the number of "
        "subjects.",
        aliases=("nobs", "rows", "n"),
    ),
    _e(
        "subjects", "Subjects", "Data",
        "The number of distinct individuals (patients, children...) measured repeatedly.",
        "This, not the number of rows, limits how precisely the between-subject variation and "
        "the effects of subject-level covariates (such as treatment arm) are estimated.",
        aliases=("patients", "groups", "ngroups"),
    ),
    _e(
        "clusters", "Clusters", "Data",
        "The number of distinct higher-level units (hospitals, schools...) the subjects "
        "belong to.",
        "A random effect for clusters needs enough of them: with fewer than about 5 to 10 "
        "clusters its variance is poorly estimated (often as zero); consider the cluster as a "
        "fixed effect instead.",
        aliases=("hospital", "centre", "site", "level above the subject"),
    ),
    _e(
        "visits_per_subject", "Visits per subject", "Data",
        "How many measurements each subject has (median shown; the histogram shows them all).",
        "Unequal numbers of visits are fine for mixed models: subjects with few visits "
        "borrow strength from the others. A random slope needs at least some subjects with 3 "
        "or more visits; subjects with a single visit inform only the intercept.",
        aliases=("visits", "measurements per patient", "cluster size", "single visit"),
    ),
    _e(
        "time_range", "Time range", "Data",
        "The smallest and largest value of the time column.",
        "Check the units (days, weeks, years) and that no value is absurd. The intercept is "
        "the value at time 0: if 0 lies far outside this range, consider centring time.",
        aliases=("follow-up", "time span"),
    ),
    _e(
        "missing_values", "Missing values", "Data",
        "Cells with no value, counted per column (and as a percentage of the rows).",
        "A model drops every row with a missing value in one of its columns, not the whole "
        "subject: mixed models use all available visits, which is valid when missingness "
        "depends only on what was observed (missing at random). Many missing outcomes late in "
        "follow-up (dropout) deserve a look on the Explore page.",
        aliases=("NA", "NaN", "dropout", "missing at random", "MAR"),
    ),
    # ------------------------------------------------------------------ Model formula
    _e(
        "formula_grammar", "Model formula", "Model formula",
        "A one-line description of the model in lme4 syntax: outcome ~ fixed effects + "
        "(random effects | grouping factor).",
        "`y ~ time * arm + (time | patient)`: `+` adds a term, `a * b` means a + b + a:b, "
        "`a:b` is an interaction, `0` or `-1` removes the intercept, `(1 | g)` is a random "
        "intercept per g, `(time | g)` adds a random slope, `||` drops the correlation, "
        "`(1 | a/b)` nests b in a, `I(time^2)` does arithmetic, and log, exp, sqrt, scale, "
        "factor are allowed. Backticks quote names with spaces.",
        formula="outcome ~ fixed terms + (random terms | group)",
        aliases=("lme4 syntax", "Wilkinson notation", "tilde", "grammar"),
    ),
    _e(
        "fixed_effect", "Fixed effect", "Model formula",
        "An effect that is the same for the whole population: the average trend and the "
        "average differences between groups such as treatment arms.",
        "These answer the usual research question (does the outcome change over time, does "
        "treatment change it). Their estimates, standard errors and p-values are in the fixed "
        "effects table.",
        aliases=("population-average effect", "beta", "coefficient"),
    ),
    _e(
        "random_intercept", "Random intercept", "Model formula",
        "Each subject (or cluster) gets its own baseline level, shifted up or down from the "
        "population average.",
        "Written `(1 | subject)`. It makes repeated measurements of one subject correlated, "
        "which is what makes the standard errors honest. Its SD says how far a typical "
        "subject's level lies from the average.",
        formula="y = (b0 + u0_i) + b1 x + error",
        aliases=("(1 | subject)", "varying intercept"),
    ),
    _e(
        "random_slope", "Random slope", "Model formula",
        "Each subject (or cluster) gets its own rate of change along a covariate, usually "
        "time.",
        "Written `(time | subject)` (with a random intercept). Without it, the standard error "
        "of the average slope is too small when subjects really change at different rates. It "
        "needs several visits per subject; a zero variance (singular fit) means the data do "
        "not support it.",
        formula="y = (b0 + u0_i) + (b1 + u1_i) time + error",
        aliases=("(time | subject)", "varying slope", "random coefficient"),
    ),
    _e(
        "uncorrelated_terms", "Uncorrelated random effects (||)", "Model formula",
        "`(time || subject)` gives each subject a random intercept and slope but assumes "
        "they are unrelated (no correlation parameter).",
        "A simpler model than `(time | subject)`, useful when the correlation is estimated "
        "as +1 or -1 (singular fit). The result depends on where time 0 is: centring time "
        "changes the answer.",
        aliases=("double bar", "||", "diagonal covariance", "zero correlation"),
    ),
    _e(
        "nested_vs_crossed", "Nested and crossed factors", "Model formula",
        "Nested: each lower unit belongs to one upper unit (a patient in one hospital). "
        "Crossed: units of two factors combine freely (every rater scores every patient).",
        "Nested: `(1 | hospital/patient)` = `(1 | hospital) + (1 | hospital:patient)`; if "
        "patient ids are unique across hospitals, `(1 | hospital) + (1 | patient)` is the "
        "same model. Crossed: `(1 | patient) + (1 | rater)`. Patient ids that repeat across "
        "hospitals (1, 2, 3 in each) must be written nested, or different patients are "
        "merged.",
        aliases=("nesting", "crossed random effects", "multilevel", "hierarchy", "/"),
    ),
    _e(
        "interaction", "Interaction", "Model formula",
        "A term `a:b` that lets the effect of a depend on the value of b.",
        "`time:arm` is the difference in slope between arms: in a trial, usually the "
        "treatment effect of interest. With an interaction in the model, the main effect of "
        "arm is the difference at time 0 only.",
        aliases=("a:b", "a*b", "effect modification", "time by treatment"),
    ),
    _e(
        "reference_level", "Reference level (treatment contrasts)", "Model formula",
        "A category is coded as differences from its first level, the reference; the "
        "reference itself gets no row.",
        "`armB` is the difference of arm B from arm A. The intercept is the value for the "
        "reference level (and every numeric covariate at 0).",
        aliases=("contrast", "dummy coding", "baseline category", "factor"),
    ),
    # ------------------------------------------------------------------ Fixed effects
    _e(
        "estimate", "Estimate (fixed effect)", "Fixed effects",
        "The model's best value of a population-average coefficient.",
        "`(Intercept)`: the expected outcome when every covariate is 0 and categories are at "
        "their reference. A numeric covariate's row: the change per unit. A category's row: "
        "the difference from the reference. Read it with its units and its confidence "
        "interval, not alone.",
        aliases=("coefficient", "beta", "fixef"),
    ),
    _e(
        "std_error", "Standard error (SE)", "Fixed effects",
        "How uncertain an estimate is: the typical distance between the estimate and the "
        "true value over repeated studies.",
        "Smaller is more precise. It shrinks with more subjects more than with more visits "
        "per subject. Roughly, estimate +/- 2 SE is a 95% interval.",
        formula="SE = sqrt(diagonal of the covariance of the estimates)",
        aliases=("SE", "Std. Error", "precision"),
    ),
    _e(
        "t_value", "t value", "Fixed effects",
        "The estimate divided by its standard error: how many standard errors it lies from "
        "zero.",
        "A |t| above about 2 suggests the coefficient is unlikely to be 0 by chance; the exact "
        "threshold depends on the degrees of freedom (see the p value). It says nothing "
        "about whether the effect is large enough to matter.",
        formula="t = estimate / SE",
        aliases=("t statistic", "Wald statistic", "z value"),
    ),
    _e(
        "df", "Degrees of freedom (df)", "Fixed effects",
        "How much information the t test of a coefficient has, which sets how heavy-tailed "
        "the reference t distribution is.",
        "Few df (say below 30) make p-values larger and intervals wider. In a mixed model the "
        "df are not simply rows minus parameters; they are approximated: Satterthwaite (the "
        "usual choice, as lmerTest), Kenward-Roger (also corrects the SE, best with few "
        "subjects, slower) or Wald (infinite df, normal distribution: too optimistic with "
        "few groups). A between-subject effect (arm) has roughly as many df as subjects, a "
        "within-subject effect (time) more.",
        aliases=("ddf", "denominator degrees of freedom"),
    ),
    _e(
        "df_satterthwaite", "Satterthwaite df", "Fixed effects",
        "Degrees of freedom approximated from how uncertain the variance estimates are, as "
        "R's lmerTest reports them.",
        "The usual default. Fractional values are normal. Small df mean the SE itself is "
        "uncertain, so the p-value and interval are made more cautious.",
        aliases=("lmerTest", "Satterthwaite approximation"),
    ),
    _e(
        "df_kenward_roger", "Kenward-Roger df", "Fixed effects",
        "Degrees of freedom plus a small-sample correction of the standard errors, as R's "
        "pbkrtest reports them.",
        "Recommended with few subjects or clusters (say below 30-50): it enlarges SEs that "
        "the plain method underestimates. Slower on big data; with many subjects it agrees "
        "with Satterthwaite.",
        aliases=("KR", "pbkrtest", "small-sample correction"),
    ),
    _e(
        "df_wald", "Wald (normal, no df correction)", "Fixed effects",
        "Tests and intervals from the normal distribution, as if the variance parameters were "
        "known exactly (infinite df).",
        "Fine with many subjects and clusters (hundreds); with few it gives p-values that are "
        "too small and intervals that are too narrow. Some software instead uses the residual "
        "df (rows minus parameters), which is too optimistic for between-subject effects.",
        formula="95% CI = estimate +/- 1.96 x SE",
        aliases=("z test", "normal approximation", "residual df", "asymptotic"),
    ),
    _e(
        "p_value", "p value", "Fixed effects",
        "The probability of a t value at least this far from 0 if the true coefficient were "
        "0.",
        "Small (below 0.05 by convention) means the data are hard to explain without the "
        "effect. It is not the probability that the effect is real, and a large p-value does "
        "not show that there is no effect (the study may be too small). Many tests on one "
        "dataset give some small p-values by chance.",
        formula="p = 2 x P(T_df > |t|)",
        aliases=("Pr(>|t|)", "significance", "statistical test"),
    ),
    _e(
        "confidence_interval", "Confidence interval (CI)", "Fixed effects",
        "A range of values for the true coefficient compatible with the data; a 95% interval "
        "catches the truth in 95% of repeated studies.",
        "Read the whole range: does it include 0 (no effect), and does it include values "
        "that would matter clinically? Narrow means precise. It is about the average effect, "
        "not about where individual patients lie (that is a prediction interval).",
        formula="estimate -/+ t quantile(df) x SE",
        aliases=("CI", "95% CI", "Wald interval", "2.5 %", "97.5 %"),
    ),
    _e(
        "design_effect", "Design effect", "Fixed effects",
        "The ratio of the mixed model's variance of an estimate to the variance an ordinary "
        "regression claims (which treats every row as an independent person).",
        "Above 1: the ordinary regression is over-confident (typical for between-subject "
        "effects such as the intercept or arm). Below 1: repeated measures made the "
        "estimate more precise (typical for within-subject effects such as time).",
        formula="design effect = (mixed SE / OLS SE)^2",
        aliases=("deff", "variance inflation", "clustering effect"),
    ),
    _e(
        "ols_vs_mixed", "Ordinary regression (OLS) estimate", "Fixed effects",
        "The same fixed effects fitted by ordinary least squares, ignoring who was measured.",
        "The estimates are often close to the mixed model's, but the OLS standard errors are "
        "wrong for repeated measures: compare them through the design effect.",
        aliases=("OLS", "lm", "naive regression", "pooled regression"),
    ),
    # ------------------------------------------------------------------ Random effects
    _e(
        "re_sd", "Random-effect SD", "Random effects",
        "How much subjects (or clusters) differ around the population average, in the units "
        "of the outcome (per unit of the slope's covariate for a slope).",
        "About 95% of subjects lie within 2 SD of the average. An intercept SD of 25 ms "
        "means typical subjects start 25 ms above or below average. An SD of exactly 0 is a "
        "singular fit.",
        formula="SD = sqrt(variance)",
        aliases=("tau", "Std.Dev.", "between-subject SD", "variance component"),
    ),
    _e(
        "re_variance", "Random-effect variance", "Random effects",
        "The square of the random-effect SD: the between-subject (or between-cluster) "
        "variability on the squared scale.",
        "Variances add up (between + within = total), which is what the ICC uses; the SD is "
        "easier to read because it is in the outcome's units.",
        formula="variance = SD^2",
        aliases=("tau^2", "variance component", "Variance"),
    ),
    _e(
        "re_correlation", "Correlation of random effects", "Random effects",
        "How a subject's intercept and slope go together across subjects.",
        "Positive: subjects that start high also rise faster; negative: they rise slower (or "
        "fall). It depends on where time 0 is. Values of exactly +1 or -1 mean the data "
        "cannot separate the two (singular fit): try `||`.",
        aliases=("Corr", "intercept-slope correlation", "covariance"),
    ),
    _e(
        "residual_sd", "Residual SD", "Random effects",
        "The scatter of single measurements around the subject's own fitted line: "
        "within-subject noise plus measurement error.",
        "Compare it with the random-effect SDs: a large residual SD against a small "
        "intercept SD means subjects differ little relative to visit-to-visit noise (low "
        "ICC).",
        formula="sigma",
        aliases=("sigma", "within-subject SD", "error SD", "Residual"),
    ),
    # ------------------------------------------------------------------ Fitting
    _e(
        "reml_vs_ml", "REML and ML", "Fitting",
        "Two ways to estimate the model: restricted maximum likelihood (REML) and maximum "
        "likelihood (ML).",
        "REML gives unbiased variance estimates and is the usual choice for the final model. "
        "ML variances are slightly too small, but only ML likelihoods can compare models "
        "with different fixed effects (LRT, AIC). The Compare page refits with ML when needed.",
        aliases=("REML", "ML", "restricted maximum likelihood", "maximum likelihood"),
    ),
    _e(
        "loglik", "Log-likelihood (logLik)", "Fitting",
        "How probable the observed data are under the fitted model, on the log scale.",
        "Higher (less negative) is better, but its value alone means nothing: only "
        "differences between models fitted to the same rows are interpretable. A REML "
        "log-likelihood is comparable only between models with the same fixed effects.",
        aliases=("logLik", "log L", "likelihood"),
    ),
    _e(
        "deviance", "Deviance (-2 logLik)", "Fitting",
        "Minus twice the ML log-likelihood: the criterion an ML fit minimises.",
        "Lower is better. The difference in deviance between two nested models is the "
        "likelihood-ratio test statistic.",
        formula="deviance = -2 x logLik",
        aliases=("-2LL", "-2 log likelihood"),
    ),
    _e(
        "reml_criterion", "REML criterion", "Fitting",
        "Minus twice the restricted log-likelihood: the criterion a REML fit minimises.",
        "Lower is better, but only between models with the same fixed effects and the same "
        "rows; it is not on the same scale as the ML deviance.",
        formula="REML criterion = -2 x REML logLik",
        aliases=("REMLcrit", "REML deviance"),
    ),
    _e(
        "aic", "AIC", "Fitting",
        "Akaike's information criterion: badness of fit plus a penalty of 2 per parameter.",
        "Lower is better. Only differences matter: a difference below about 2 is no real "
        "preference, above about 10 is strong. Compare only models fitted to the same rows "
        "(and, for REML fits, with the same fixed effects).",
        formula="AIC = -2 logLik + 2 x parameters",
        aliases=("Akaike",),
    ),
    _e(
        "bic", "BIC", "Fitting",
        "Bayesian information criterion: like AIC with a penalty that grows with the number "
        "of observations.",
        "Lower is better. BIC favours simpler models than AIC on big data. The same "
        "comparison rules as AIC apply.",
        formula="BIC = -2 logLik + log(n) x parameters",
        aliases=("Schwarz", "SBC"),
    ),
    _e(
        "parameters", "Number of parameters", "Fitting",
        "How many values the model estimates: fixed effects, random-effect variances and "
        "correlations, and the residual variance.",
        "More parameters always fit the sample better; AIC, BIC and the LRT ask whether the "
        "improvement is worth them.",
        aliases=("npar", "Df"),
    ),
    _e(
        "convergence", "Convergence", "Fitting",
        "Whether the optimizer confirmed that it found the best-fitting variance parameters.",
        "A converged fit can be trusted numerically. If not: simplify the random effects, or "
        "rescale covariates (time in years rather than days); do not report the numbers as "
        "they are.",
        aliases=("converged", "optimizer", "convergence warning", "gradient"),
    ),
    _e(
        "singular_fit", "Singular fit", "Fitting",
        "A fit in which a random-effect variance is estimated as exactly 0 or a correlation "
        "as exactly +1 or -1: the edge of what is possible.",
        "Not an error: the data do not support that part of the random effects (too few "
        "subjects, visits, or too little real variation). The fixed effects are usually "
        "fine; the simpler model without that part is usually preferable. The Model page "
        "offers it.",
        aliases=("boundary fit", "isSingular", "zero variance"),
    ),
    # ------------------------------------------------------------------ Comparing models
    _e(
        "lrt", "Likelihood-ratio test (LRT)", "Comparing models",
        "A test of whether a bigger model fits significantly better than a smaller model "
        "nested in it.",
        "Chisq is the drop in deviance, Df the number of added parameters. A small p-value "
        "favours the bigger model. The models must use the same rows; models differing in "
        "fixed effects must be fitted by ML (the app refits them).",
        formula="Chisq = deviance(small) - deviance(big), compared with chi-square(Df)",
        aliases=("anova", "Chisq", "chi-square test", "nested models", "deviance test"),
    ),
    _e(
        "chibar", "Chi-bar-square (boundary) test", "Comparing models",
        "A corrected LRT p-value for testing whether a variance is zero, a value on the edge "
        "of what is possible.",
        "The ordinary chi-square p-value is then too large (too cautious). For one added "
        "variance the corrected p-value is half the ordinary one; report the corrected one.",
        formula="p = 0.5 x P(chi2_(df-1) > Chisq) + 0.5 x P(chi2_df > Chisq)",
        aliases=("mixture chi-square", "boundary test", "50:50 mixture"),
    ),
    _e(
        "re_ladder", "Random-effects ladder", "Comparing models",
        "A sequence of models with the same fixed effects, each adding one piece of "
        "random-effects structure: random intercept, + independent random slope, + their "
        "correlation, + a cluster intercept.",
        "Climb while each step's test is significant and AIC/BIC drop; stop at the first step "
        "the data do not support. Steps that add a variance use the chi-bar-square p-value, "
        "the step that adds the correlation the ordinary chi-square one. Prefer the simpler "
        "model when the evidence is weak.",
        aliases=("model building", "step-up", "random effects structure"),
    ),
    # ------------------------------------------------------------------ Variance explained
    _e(
        "icc", "Intraclass correlation (ICC)", "Variance explained",
        "The share of the variance (after the fixed effects) that lies between subjects (or "
        "clusters); equally, the correlation of two measurements of the same subject.",
        "0: measurements of one subject are no more alike than those of different subjects. "
        "1: all variation is between subjects. High ICC means repeated visits add little "
        "new information about between-subject questions.",
        formula="ICC = between variance / (between variance + residual variance)",
        aliases=("intra-class correlation", "variance partition coefficient", "VPC",
                 "repeatability"),
    ),
    _e(
        "icc_time", "ICC along time", "Variance explained",
        "With a random slope, the between-subject variance changes with time, and so does "
        "the ICC; this shows it at several times.",
        "Usually it grows as subjects fan out over time. A single ICC from a slope model "
        "refers to time 0 only, which may not be a meaningful time.",
        formula="ICC(t) = z(t)' Sigma z(t) / (z(t)' Sigma z(t) + sigma^2), z(t) = (1, t)",
        aliases=("ICC over time", "ICC curve"),
    ),
    _e(
        "r2_marginal", "Marginal R²", "Variance explained",
        "The share of the outcome's variance explained by the fixed effects alone "
        "(Nakagawa-Schielzeth).",
        "0 to 1; higher means the covariates (time, arm...) explain more. It does not measure "
        "model quality or prediction for a known subject.",
        formula="R2m = fixed variance / (fixed + random + residual variance)",
        aliases=("R2", "R squared", "Nakagawa", "variance explained"),
    ),
    _e(
        "r2_conditional", "Conditional R²", "Variance explained",
        "The share of the outcome's variance explained by the fixed and the random effects "
        "together.",
        "The gap to the marginal R² is what knowing the subject adds. A high conditional and "
        "low marginal R² means subjects differ a lot, but the covariates explain little of "
        "it.",
        formula="R2c = (fixed + random variance) / (fixed + random + residual variance)",
        aliases=("R2", "R squared", "Nakagawa"),
    ),
    # ------------------------------------------------------------------ Uncertainty
    _e(
        "profile_ci", "Profile-likelihood interval", "Uncertainty and intervals",
        "A confidence interval found by moving one parameter away from its estimate, refitting "
        "the rest, until the fit becomes significantly worse.",
        "Better than estimate +/- 2 SE for variance components, whose uncertainty is "
        "lopsided and which cannot go below 0; a lower limit of 0 means zero variation is "
        "compatible with the data. The same as R's `confint(fit, method = 'profile')`.",
        aliases=("profile", "likelihood interval", "confint"),
    ),
    _e(
        "bootstrap", "Parametric bootstrap", "Uncertainty and intervals",
        "Simulate many new datasets from the fitted model, refit each, and read the "
        "intervals off the spread of the estimates.",
        "Makes no normal-distribution assumption about the estimates, which helps for "
        "variances with few subjects. More replicates give steadier limits (1,000 or more for "
        "a final report); the same seed gives the same result. It trusts the model: if the "
        "model is wrong, so are the intervals.",
        aliases=("bootstrap", "simulation", "replicates", "seed", "percentile interval"),
    ),
    # ------------------------------------------------------------------ Subject estimates
    _e(
        "blup", "BLUP (conditional mode)", "Subject estimates and shrinkage",
        "The model's estimate of one subject's random effect: how far that subject's "
        "intercept (or slope) lies from the population value.",
        "Positive: above the average; negative: below. It is shrunk toward 0, more for "
        "subjects with few or noisy measurements, so it is not the subject's raw deviation. "
        "Do not run a second analysis on BLUPs as if they were data.",
        formula="b_i = E(random effect | data); with a random intercept only, "
        "b_i = n_i tau^2 / (n_i tau^2 + sigma^2) x (mean residual of subject i)",
        aliases=("conditional mode", "random effect estimate", "ranef", "empirical Bayes",
                 "EBLUP", "predicted random effect"),
    ),
    _e(
        "conditional_sd", "Conditional SD", "Subject estimates and shrinkage",
        "How uncertain one subject's BLUP is, given the data.",
        "Large for subjects with few visits, small for subjects with many. BLUP +/- 1.96 "
        "conditional SD is the 95% interval in the caterpillar plot; if it excludes 0, the "
        "subject clearly differs from the population.",
        aliases=("condSD", "posterior SD", "SD given the data"),
    ),
    _e(
        "shrinkage", "Shrinkage", "Subject estimates and shrinkage",
        "The mixed model pulls each subject's estimate from the subject's own data toward the "
        "population value.",
        "Subjects with few or noisy measurements are pulled most, because their own estimate "
        "is most likely to be extreme by chance. On average this gives better estimates than "
        "either fitting each subject alone or ignoring the differences ('borrowing strength').",
        aliases=("partial pooling", "borrowing strength", "regression to the mean"),
    ),
    _e(
        "shrinkage_factor", "Shrinkage factor (share kept)", "Subject estimates and shrinkage",
        "The share of the subject's own distance from the population value that the mixed "
        "model keeps.",
        "1: not moved (the subject's own data dominate); 0: moved all the way to the "
        "population value. It grows with the number of visits and with how much subjects "
        "truly differ, and falls with the measurement noise.",
        formula="factor = (mixed - population) / (own - population); "
        "random intercept: n tau^2 / (n tau^2 + sigma^2)",
        aliases=("reliability", "weight", "kept"),
    ),
    _e(
        "own_estimate", "Own-data estimate", "Subject estimates and shrinkage",
        "An ordinary least-squares fit of the subject's own intercept (and slope) to that "
        "subject's visits alone, ignoring everyone else.",
        "Unbiased for that subject but noisy with few visits; it cannot be computed with "
        "fewer visits than coefficients (those subjects are left out). The mixed-model "
        "estimate is a weighted compromise between it and the population value.",
        aliases=("no pooling", "per-subject OLS", "individual regression", "own data only"),
    ),
    _e(
        "population_value", "Population value", "Subject estimates and shrinkage",
        "The fixed-effects estimate for a typical subject with the same covariates (for "
        "example the same treatment arm).",
        "The point every subject's estimate is shrunk toward; the random effect (BLUP) is "
        "the distance from it.",
        aliases=("complete pooling", "typical subject", "average"),
    ),
    _e(
        "moved", "Distance moved", "Subject estimates and shrinkage",
        "How far the mixed model moved a subject's estimate away from the subject's own-data "
        "estimate.",
        "Largest for subjects with few visits and extreme own estimates; in the units of the "
        "effect (outcome units for an intercept, per unit of time for a slope).",
        formula="|mixed - own|",
        aliases=("moved",),
    ),
    # ------------------------------------------------------------------ Prediction
    _e(
        "population_prediction", "Population-average prediction", "Prediction",
        "The predicted outcome for a typical subject with given covariates: fixed effects "
        "only, every random effect at 0.",
        "What to expect for a new patient you know nothing about beyond the covariates. The "
        "thick line on the Trajectories page.",
        formula="X beta",
        aliases=("marginal prediction", "re.form = NA", "typical subject", "population curve"),
    ),
    _e(
        "subject_prediction", "Subject-specific prediction", "Prediction",
        "The predicted outcome for a particular subject: fixed effects plus that subject's "
        "random effects (BLUPs).",
        "Follows the subject's own data, shrunk toward the population curve. For a subject "
        "outside the data, the random effects are first estimated from the visits given.",
        formula="X beta + Z b_i",
        aliases=("conditional prediction", "fitted", "individual curve"),
    ),
    _e(
        "cluster_prediction", "Cluster-level prediction", "Prediction",
        "The population curve shifted by the random effect of the subject's cluster (for "
        "example the hospital), without the subject's own deviation.",
        "The gap between it and the population curve is the cluster's effect; the gap "
        "between it and the subject's curve is the subject's own deviation within the "
        "cluster.",
        formula="X beta + Z b_cluster",
        aliases=("hospital curve", "cluster curve", "level 2 prediction"),
    ),
    _e(
        "confidence_vs_prediction", "Confidence vs prediction interval", "Prediction",
        "A confidence interval is for an average (where the population curve lies); a "
        "prediction interval is for a single new measurement (where one value will fall).",
        "The prediction interval is always wider, because it adds the between-subject and "
        "the visit-to-visit scatter. Use the confidence interval for 'what is the average', "
        "the prediction interval for 'what range is normal for a patient'.",
        aliases=("prediction interval", "reference range", "PI"),
    ),
    _e(
        "band_fixed", "Band 1: population average", "Prediction",
        "The part of the forecast's uncertainty that comes from the estimated fixed effects "
        "(the population average) alone.",
        "Narrow with a big study, and narrower still as visits are added (the forecast then "
        "leans less on the population average). It says nothing about how much individual "
        "patients vary.",
        aliases=("darkest band", "fixed band", "confidence band"),
    ),
    _e(
        "band_patient", "Band 2: this patient's course", "Prediction",
        "Band 1 plus what is still unknown about this patient's own deviation (their random "
        "effects given the visits entered): where their true course lies.",
        "With no visits it spans the whole spread between patients; every visit narrows it.",
        aliases=("middle band", "patient band", "mean band"),
    ),
    _e(
        "band_prediction", "Band 3: a new measurement", "Prediction",
        "Band 2 plus the scatter of single measurements (the residual SD): where this "
        "patient's next measured value will fall, 95% of the time.",
        "Never narrower than about +/- 2 residual SD, however many visits are known. A later "
        "value outside it is unusual for this patient.",
        aliases=("lightest band", "prediction band", "total band"),
    ),
    _e(
        "forecast", "Forecast", "Prediction",
        "The predicted course of the new patient given the visits entered: the population "
        "curve plus the estimated own deviation.",
        "With no visits it equals the population curve; with more visits it follows the "
        "patient's own data more closely.",
        aliases=("fit", "predicted value", "new subject"),
    ),
    _e(
        "uncertainty_removed", "Uncertainty removed", "Prediction",
        "The share of the between-patient uncertainty about this patient's random effect "
        "that the visits entered have removed.",
        "0%: nothing learned yet (the population value is used); near 100%: the visits pin "
        "the patient's own level (or slope) down. Slopes need more, and more spread-out, "
        "visits than levels.",
        formula="1 - (SD given the visits / SD before any visit)^2",
        aliases=("learned", "information gained"),
    ),
    _e(
        "prior_sd", "SD before any visit", "Prediction",
        "The random-effect SD of the model: how far a patient you know nothing about may lie "
        "from the population value.",
        "The starting uncertainty; the visits reduce it to the 'SD given the visits' "
        "(conditional SD).",
        aliases=("prior SD", "random-effect SD"),
    ),
    _e(
        "band_width", "Band width", "Prediction",
        "The distance between the upper and lower limit of a band at one time.",
        "Shows how the uncertainty falls as visits are added: the patient band narrows "
        "quickly at first, the prediction band stops at the measurement noise.",
        formula="upper - lower",
        aliases=("interval width",),
    ),
    # ------------------------------------------------------------------ Diagnostics
    _e(
        "implied_correlation", "Implied vs observed correlation", "Diagnostics",
        "The correlation between measurements at two visit times that the fitted model "
        "implies, next to the one seen in the data (across subjects, after removing the fixed "
        "effects).",
        "If the model is adequate they agree. A random intercept implies the same correlation "
        "for every pair of visits; observed correlations that fall as visits lie further apart "
        "suggest a random slope or a serial (autocorrelated) error. With few subjects the "
        "observed values are noisy.",
        aliases=("correlation matrix", "autocorrelation", "serial correlation",
                 "compound symmetry", "covariance structure"),
    ),
    _e(
        "residual_conditional", "Residual (conditional)", "Diagnostics",
        "Observed minus the subject-specific fitted value (fixed plus random effects): the "
        "visit-to-visit scatter the model leaves.",
        "Should scatter evenly around 0 with no pattern against the fitted values or time. A "
        "funnel means the noise grows with the level; a curve means a missing term (for "
        "example time squared). Standardized residuals (divided by sigma) beyond +/- 3 are "
        "worth checking.",
        formula="y - X beta - Z b",
        aliases=("residual", "standardized residual", "Pearson residual", "within residual"),
    ),
    _e(
        "residual_marginal", "Residual (marginal)", "Diagnostics",
        "Observed minus the population-average prediction (fixed effects only).",
        "Contains the subjects' own deviations, so residuals of one subject are correlated; "
        "use it to check the shape of the average trend, not the noise.",
        formula="y - X beta",
        aliases=("population residual", "marginal residual"),
    ),
    _e(
        "fitted_value", "Fitted value", "Diagnostics",
        "The model's value for an observed row: fixed effects plus the subject's random "
        "effects.",
        "Compare it with the observed value: their difference is the conditional residual.",
        aliases=("fitted", "predicted", "yhat"),
    ),
    _e(
        "qq_plot", "QQ plot", "Diagnostics",
        "Sorted residuals (or random effects) against the values a normal distribution would "
        "give: points on the line mean normally distributed.",
        "Small wiggles are normal. Curved ends (an S or a banana) mean heavy tails or "
        "skewness; a few points far off the line are outliers. The fixed effects are robust "
        "to mild non-normality; prediction intervals are not.",
        aliases=("quantile-quantile plot", "normal probability plot", "normality"),
    ),
    # ------------------------------------------------------------------ Plots
    _e(
        "spaghetti_plot", "Spaghetti plot", "Plots",
        "One line per subject joining their measurements over time.",
        "Lines starting at different heights suggest a random intercept; lines with "
        "different steepness suggest a random slope; lines ending early show dropout.",
        aliases=("individual trajectories", "profile plot"),
    ),
    _e(
        "mean_trajectory", "Mean trajectory", "Plots",
        "The average outcome at each time with its 95% confidence band, ignoring who was "
        "measured.",
        "A quick look at the average trend. Dropout can bend it (if sicker patients leave, "
        "the mean of those remaining looks better): the mixed model's population curve "
        "corrects for this when dropout depends on earlier values.",
        aliases=("mean curve", "average trajectory", "observed means"),
    ),
    _e(
        "caterpillar_plot", "Caterpillar plot", "Plots",
        "Every subject's BLUP with its 95% interval, sorted from lowest to highest.",
        "Intervals that exclude 0 (red) mark subjects that clearly differ from the "
        "population. Wide intervals belong to subjects with few visits. A ranking of "
        "subjects from it is very uncertain in the middle.",
        aliases=("ranef plot", "dotplot of random effects", "forest plot"),
    ),
    _e(
        "trajectory_chart", "Fitted trajectories", "Plots",
        "The population-average curve with its confidence band, and each chosen subject's "
        "own fitted curve with their measurements.",
        "The gap between a subject's thin line and the thick line is their random effect; "
        "the dots' scatter around the thin line is the residual.",
        aliases=("trajectories", "fitted curves", "individual predictions"),
    ),
    # ------------------------------------------------------------------ Simulation
    _e(
        "true_value", "True value (simulation)", "Simulation",
        "The value a simulated study was generated from, known only because we simulated it.",
        "Real studies never show it. Compare an estimate with it to see how close one study "
        "gets, and repeat the study to see how much that varies.",
        aliases=("truth", "data-generating value", "parameter"),
    ),
    _e(
        "coverage", "Coverage", "Simulation",
        "The share of repeated studies whose confidence interval contains the true value.",
        "A 95% interval should cover about 95% of the time. Clearly less means the interval "
        "is too narrow (over-confident), as for ordinary regression on repeated measures; "
        "more means it is too wide. With few simulated studies, coverage itself is noisy.",
        formula="coverage = studies whose interval contains the truth / studies",
        aliases=("coverage probability", "nominal level"),
    ),
    _e(
        "bias", "Bias", "Simulation",
        "How far the average estimate over many studies lies from the true value.",
        "Near 0 is good. Variances estimated by ML are biased downward (too small) with few "
        "subjects; REML corrects most of that.",
        formula="bias = mean of estimates - true value",
        aliases=("systematic error",),
    ),
    _e(
        "empirical_se", "Study-to-study SD (empirical SE)", "Simulation",
        "How much an estimate varies from one simulated study to the next: the true standard "
        "error.",
        "The standard error a model reports should match it on average; a reported SE much "
        "smaller than this is over-confident.",
        aliases=("empirical standard error", "sampling SD", "Monte Carlo SD"),
    ),
    _e(
        "rmse", "RMSE", "Simulation",
        "Root mean squared error: the typical distance between estimates and the true values.",
        "Smaller is better. It combines bias and variability; shrunken (mixed-model) "
        "estimates usually have a smaller RMSE than each subject's own estimate, although "
        "they are biased toward the population.",
        formula="RMSE = sqrt(mean((estimate - truth)^2))",
        aliases=("root mean squared error", "accuracy"),
    ),
]
# fmt: on

#: key -> entry, in glossary order within each topic.
ENTRIES: dict[str, HelpEntry] = {e.key: e for e in _LIST}
if len(ENTRIES) != len(_LIST):  # pragma: no cover - guards against a duplicated key
    raise RuntimeError("dashboard.help_texts: duplicate help key")


def entry(key: str) -> HelpEntry:
    """The entry ``key``; ``KeyError`` naming the key when there is none."""
    try:
        return ENTRIES[key]
    except KeyError:
        raise KeyError(f"no help text for {key!r}; add it to dashboard.help_texts") from None


def help_text(key: str) -> str:
    """Markdown for a ``help=`` argument: term, what it is, how to read it, formula."""
    return entry(key).text()


def search(query: str) -> list[HelpEntry]:
    """Entries containing every word of ``query`` (case-insensitive); all for a blank query."""
    words = query.lower().split()
    return [e for e in ENTRIES.values() if all(w in e.haystack() for w in words)]


def by_topic(entries: list[HelpEntry] | None = None) -> dict[str, list[HelpEntry]]:
    """``entries`` (default: all) grouped by topic in :data:`TOPICS` order, empty topics out."""
    entries = list(ENTRIES.values()) if entries is None else entries
    grouped = {t: [e for e in entries if e.topic == t] for t in TOPICS}
    return {t: es for t, es in grouped.items() if es}
