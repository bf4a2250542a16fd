"""The quantities the paper estimates, on models and data: input loss curvature (`curvature`), Feldman-Zhang
memorization (`memorization`), DP accounting and noise calibration (`privacy`), the empirical epsilon lower bound
of a canary audit (`audit_bound`), and batches that shrink when the GPU runs out of memory (`batches`)."""
