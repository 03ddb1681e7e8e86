"""Data preparation: AMASS reading, body models, pose extraction, captions, HumanML3D features and their
corpus, statistics, synthetic data, downloads."""
