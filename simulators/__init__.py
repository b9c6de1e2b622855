"""abduce.simulators: ground-truth physics in numpy, with seeded noise (never imports torch)."""
