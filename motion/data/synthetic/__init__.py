"""Deterministic synthetic motion dataset: the pipeline's embedded default in place of AMASS + HumanML3D.

Procedural part-level actions (``actions``) are composed into whole-body motions (``compose``) of
the built-in skeleton, described by varied captions and ground-truth part texts (``captions``) and
written as AMASS .npz files with HumanML3D annotations (``dataset``).
"""
from motion.data.synthetic.body import body_scale_from_betas
from motion.data.synthetic.dataset import generate_dataset

__all__ = ["body_scale_from_betas", "generate_dataset"]
