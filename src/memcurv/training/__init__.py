"""Models and how they are trained: the architectures (`models`), one training loop for private and non-private
models (`train`), and many small models trained at once (`ensemble`)."""
