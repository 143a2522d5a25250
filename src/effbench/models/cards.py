"""Model cards: what the papers (or timm's published results) report, with the source named.

Reported figures are there to be re-measured, not trusted: `bench run` puts the MACs it counts on
the exported graph next to these, and reports use the top-1 for speed-accuracy plots.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelCard:
    name: str  # the effbench name (equal to the timm name for timm models)
    timm_name: str
    family: str
    input_shape: tuple[int, int, int]  # C, H, W the model is evaluated at
    top1: float | None  # ImageNet-1k top-1 (%), as reported
    params_m: float | None  # millions, as reported
    macs_m: float | None  # millions of multiply-accumulates, as reported
    source: str

    def to_dict(self) -> dict:
        return asdict(self)


_EFFVIT = "EfficientViT (Liu et al., CVPR 2023), Table 2"

CARDS: dict[str, ModelCard] = {
    c.name: c
    for c in [
        ModelCard("efficientvit_m0", "efficientvit_m0", "efficientvit", (3, 224, 224), 63.2, 2.3, 79, _EFFVIT),
        ModelCard("efficientvit_m1", "efficientvit_m1", "efficientvit", (3, 224, 224), 68.4, 3.0, 167, _EFFVIT),
        ModelCard("efficientvit_m2", "efficientvit_m2", "efficientvit", (3, 224, 224), 70.8, 4.2, 201, _EFFVIT),
        ModelCard("efficientvit_m3", "efficientvit_m3", "efficientvit", (3, 224, 224), 73.4, 6.9, 263, _EFFVIT),
        ModelCard("efficientvit_m4", "efficientvit_m4", "efficientvit", (3, 224, 224), 74.3, 8.8, 299, _EFFVIT),
        ModelCard("efficientvit_m5", "efficientvit_m5", "efficientvit", (3, 224, 224), 77.1, 12.4, 522, _EFFVIT),
        ModelCard(
            "efficientformer_l1",
            "efficientformer_l1",
            "efficientformer",
            (3, 224, 224),
            79.2,
            12.3,
            1300,
            "EfficientFormer (Li et al., NeurIPS 2022), Table 1",
        ),
        ModelCard(
            "mobilenetv3_large_100",
            "mobilenetv3_large_100",
            "mobilenet",
            (3, 224, 224),
            75.2,
            5.4,
            219,
            "Searching for MobileNetV3 (Howard et al., ICCV 2019), Table 3",
        ),
        ModelCard(
            "mobilenetv3_small_050",
            "mobilenetv3_small_050",
            "mobilenet",
            (3, 224, 224),
            57.9,
            1.6,
            24,
            "timm published results (mobilenetv3_small_050.lamb_in1k)",
        ),
        ModelCard(
            "mobilenetv2_140",
            "mobilenetv2_140",
            "mobilenet",
            (3, 224, 224),
            74.7,
            6.9,
            585,
            "MobileNetV2 (Sandler et al., CVPR 2018), Table 6",
        ),
        ModelCard(
            "efficientnet_b0",
            "efficientnet_b0",
            "efficientnet",
            (3, 224, 224),
            77.1,
            5.3,
            390,
            "EfficientNet (Tan & Le, ICML 2019), Table 2",
        ),
        ModelCard(
            "resnet50",
            "resnet50",
            "resnet",
            (3, 224, 224),
            76.1,
            25.6,
            4100,
            "Deep Residual Learning (He et al., CVPR 2016), torchvision reference weights",
        ),
        ModelCard(
            "fastvit_t8",
            "fastvit_t8",
            "fastvit",
            (3, 256, 256),
            75.6,
            3.6,
            700,
            "FastViT (Vasu et al., ICCV 2023), Table 1",
        ),
        ModelCard(
            "repvit_m1_0",
            "repvit_m1_0",
            "repvit",
            (3, 224, 224),
            80.0,
            6.8,
            1100,
            "RepViT (Wang et al., CVPR 2024), Table 2 (300 epochs, distilled)",
        ),
        ModelCard(
            "mobilevitv2_100",
            "mobilevitv2_100",
            "mobilevit",
            (3, 256, 256),
            78.1,
            4.9,
            1800,
            "MobileViTv2 (Mehta & Rastegari, 2022), Table 1",
        ),
        ModelCard(
            "mobilevit_xxs",
            "mobilevit_xxs",
            "mobilevit",
            (3, 256, 256),
            69.0,
            1.3,
            364,
            "MobileViT (Mehta & Rastegari, ICLR 2022), Table 1 (MACs from timm)",
        ),
    ]
}
