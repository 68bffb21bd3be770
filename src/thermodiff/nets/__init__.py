"""Networks: (x_t, t) -> raw tensor. They know nothing of schedules or losses; registry.py names them."""

from thermodiff.nets.classifier import NoisyClassifier, build_classifier
from thermodiff.nets.mlp import MLP, PerStepMLP, RBFNet
from thermodiff.nets.multiscale import MultiScaleConv, PaperImageNet
from thermodiff.nets.registry import NETS, NetEntry, build_net, register_net
from thermodiff.nets.unet import UNet

__all__ = [
    "MLP",
    "NETS",
    "MultiScaleConv",
    "NetEntry",
    "NoisyClassifier",
    "PaperImageNet",
    "PerStepMLP",
    "RBFNet",
    "UNet",
    "build_classifier",
    "build_net",
    "register_net",
]
