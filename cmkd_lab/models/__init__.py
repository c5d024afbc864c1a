"""Encoders and heads (the encoder/head protocol)."""
from .encoders import (ENCODER_KINDS, Classifier, CNN1dEncoder, CNN2dEncoder, MLPEncoder, build_classifier,
                       build_encoder, check_compatible)

__all__ = ["ENCODER_KINDS", "Classifier", "CNN1dEncoder", "CNN2dEncoder", "MLPEncoder", "build_classifier",
           "build_encoder", "check_compatible"]
