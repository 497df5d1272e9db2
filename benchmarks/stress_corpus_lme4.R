# Fit every case of the stress corpus with lme4's three optimizers (development only, not CI).
#   .venv/bin/python benchmarks/stress_corpus.py --export /tmp/corpus
#   Rscript benchmarks/stress_corpus_lme4.R /tmp/corpus        # writes /tmp/corpus/lme4.json
#   .venv/bin/python benchmarks/stress_corpus.py --lme4 /tmp/corpus/lme4.json
# Each value is REMLcrit() for REML fits and deviance() for ML fits (the same scale as
# lmm_core's objective); NULL where an optimizer failed.
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]
txt <- paste(readLines(file.path(folder, "manifest.json"), warn = FALSE), collapse = "")
# Minimal JSON reading (no jsonlite on Debian's r-base-core): one object per case.
items <- regmatches(txt, gregexpr("\\{[^}]*\\}", txt))[[1]]
field <- function(item, key) {
  m <- regmatches(item, regexec(sprintf('"%s": ("[^"]*"|[^,}]*)', key), item))[[1]][2]
  gsub('^"|"$', "", m)
}
out <- character(0)
for (item in items) {
  index <- field(item, "index")
  formula <- as.formula(field(item, "formula"))
  reml <- field(item, "reml") == "true"
  d <- read.csv(file.path(folder, field(item, "file")), stringsAsFactors = TRUE)
  for (g in intersect(c("id", "site", "a", "b", "arm"), names(d))) d[[g]] <- factor(d[[g]])
  vals <- sapply(c("nloptwrap", "bobyqa", "Nelder_Mead"), function(o) {
    f <- tryCatch(
      suppressWarnings(suppressMessages(
        lmer(formula, d, REML = reml, control = lmerControl(optimizer = o))
      )),
      error = function(e) NULL
    )
    if (is.null(f)) return("null")
    sprintf("%.12f", if (reml) REMLcrit(f) else deviance(f))
  })
  out <- c(out, sprintf('"%s": {"nloptwrap": %s, "bobyqa": %s, "Nelder_Mead": %s}',
                        index, vals[1], vals[2], vals[3]))
}
writeLines(paste0("{", paste(out, collapse = ",\n"), "}"), file.path(folder, "lme4.json"))
