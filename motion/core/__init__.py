"""Conventions every phase shares: skeleton, body parts, kinematics, settings, devices, errors, atomic I/O."""
