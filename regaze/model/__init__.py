"""The redirection model of patent CN118116053A (claims 1-4), one file per block of the patent's figure:

    encoder.py        Encoder: image -> f_e
    decomposition.py  IrrelevantAttributeDecomposition: f_e -> Features (Z_id, Z_g, Z_h, m~g, m~h)
    separation.py     CrossAttributeSeparation: rotate / choose / swap the target feature
    decoder.py        Decoder: (Z_id, Z_g, Z_h) -> image
    discriminator.py  PatchGAN Discriminator (adversarial losses; not part of the Redirector)
    redirector.py     Redirector = the four above; encode / decode for training, redirect() for users
    layers.py         convolution blocks (PointwiseConv2d: every 1x1 conv, off oneDNN's AVX2 1x1 kernel)
    framing.py        where the eyes are in a normalized crop (eye weights, the gaze-only eye composite)
    pretrained.py     a trained Redirector from a run directory or checkpoint file

Imports only the leaves (geometry, config, errors, checkpoint): never data/, training/ or the CLI.
"""
from regaze.model.decoder import Decoder
from regaze.model.decomposition import Features, IrrelevantAttributeDecomposition
from regaze.model.discriminator import Discriminator
from regaze.model.encoder import Encoder
from regaze.model.redirector import Redirector
from regaze.model.separation import CrossAttributeSeparation

__all__ = [
    "Encoder",
    "IrrelevantAttributeDecomposition",
    "Features",
    "CrossAttributeSeparation",
    "Decoder",
    "Discriminator",
    "Redirector",
]
