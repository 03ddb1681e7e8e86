"""The IK-like vs FK-like prompt study: constraints, the study, its report."""
