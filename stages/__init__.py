"""One entry point per DVC stage (`python -m stages.<name>`): parse settings, call library code, write outputs."""
