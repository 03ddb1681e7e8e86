"""Domain library for the LGTM pipeline: skeleton, kinematics, features, body parts, data I/O."""
