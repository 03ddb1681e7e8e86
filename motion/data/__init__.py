"""Data preparation: AMASS reading, body models, pose extraction, captions, HumanML3D features, statistics, synthetic data, downloads."""
