"""LGTM studio: a local web app to type a caption, edit the six part texts, generate and watch motions in 3D,
search the dataset by text and download the files of ``tools.generate``. Run ``python -m tools.studio``."""
