"""Reading a run's tables: the paper's mathematics and fits (`theory`), bootstrap intervals (`bootstrap`), the
released code's defects and the readings of the tables they give (`readings`), the claims' verdicts (`claims`),
split-half reliability (`reliability`), and published per-example scores to compare with (`cscores`,
`published`).  Nothing here trains a model."""
