"""Part-level text: splitting captions into six body-part texts and embedding texts."""
