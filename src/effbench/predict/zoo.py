"""The models a predictor is built on, and the held-out models it is validated on: efficient
families (MobileNet, EfficientNet, GhostNet, RegNet, MnasNet, FBNet, EfficientViT, FastViT, RepViT,
MobileViT, EfficientFormer, ...). No name is in both lists (a test checks)."""

from __future__ import annotations

from effbench.models.cards import CARDS

BUILD_EXTRA = [
    "mobilenetv3_large_075",
    "mobilenetv3_small_100",
    "mobilenetv2_100",
    "mobilenetv2_050",
    "efficientnet_b1",
    "efficientnet_lite0",
    "ghostnet_100",
    "regnetx_004",
    "regnety_004",
    "mnasnet_100",
    "semnasnet_100",
    "fbnetc_100",
    "efficientvit_b0",
    "fastvit_t12",
    "repvit_m0_9",
    "mobilevit_xs",
    "efficientformerv2_s0",
    "mixnet_s",
    "tinynet_a",
    "lcnet_100",
    "hardcorenas_a",
    "resnet18",
    "mobileone_s0",
    "edgenext_xx_small",
]

HELD_OUT = [
    "mobilenetv3_small_075",
    "mobilenetv2_110d",
    "mobilenetv2_120d",
    "efficientnet_b2",
    "efficientnet_lite1",
    "ghostnet_130",
    "ghostnetv2_100",
    "regnetx_006",
    "regnety_006",
    "regnetx_002",
    "mnasnet_small",
    "semnasnet_075",
    "fbnetv3_b",
    "efficientvit_b1",
    "fastvit_s12",
    "repvit_m1_1",
    "mobilevit_s",
    "mobilevitv2_075",
    "efficientformerv2_s1",
    "mixnet_m",
    "tinynet_b",
    "lcnet_075",
    "hardcorenas_c",
    "mobileone_s1",
]

# the zoo at each model's own resolution and at 160 px (kernel configurations around the zoo's layers)
RESOLUTIONS: list[int | None] = [None, 160]


def build_zoo() -> list[str]:
    return [*CARDS, *BUILD_EXTRA]
