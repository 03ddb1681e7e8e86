"""Readers for the released (official) LGTM, TMR and T2M-evaluator files.

Each reader turns an official file into the project's own modules (``models.lgtm.LGTM`` with its
official-compatible options, ``models.tmr.TMR``, ``models.t2m_evaluator``) by mapping keys; no
official code is imported or needed.
"""
