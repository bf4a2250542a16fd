"""What models learn from: the dataset registry (`datasets`, one module per dataset), the in-memory `Dataset` the
jobs train on (`loading`), and seeded label noise (`label_noise`).  Imports nothing above `memcurv.io`."""
