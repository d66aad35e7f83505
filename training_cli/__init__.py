"""Command-line training, evaluation, synthesis and export (no Qt). See ``python -m training_cli --help``."""
