"""Neural networks of the pipeline: TMR retrieval encoders (models.tmr) and the LGTM diffusion model."""
