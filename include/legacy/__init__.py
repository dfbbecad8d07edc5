"""The old Django app's entry points, kept so its users move over without relearning: the
``fine_tune_matcher`` command (labelled folder in, model folder out) and labelled-folder loading.
The nightly DAG (:mod:`include.matcher`) is the production path."""
