"""Intent classification: base-model loading, LoRA training, calibrated prediction, model registry."""
