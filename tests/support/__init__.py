"""Shared test support: tiny corpora, fakes and workspaces (no tests here).

``amass``: AMASS 'SMPL+H G' files, archives and a HumanML3D checkout; ``body_model``: a random valid
SMPL+H model file; ``motions``: synthetic joint motions and headings; ``tmr``: a TMR features/texts
corpus and fake text embeddings; ``lgtm``: an LGTM corpus, tiny model config and dataset; ``llm``: a
scripted chat-completions server; ``params``: the real params.yaml with overrides for stage tests;
``workspace``: a throwaway copy of the repository for DVC end-to-end runs; ``embedding_fingerprint``: the
tolerance fingerprint of an embed_texts output (tests/golden). Test modules and
benchmarks import from here, never from each other.
"""
