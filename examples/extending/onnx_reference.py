"""A whole effbench backend in one file: ONNX's own reference evaluator (onnx.reference), which runs
any ONNX graph in numpy. Slow, but exact: handy to check a runtime's numbers against.

Register it with one entry point in your package's pyproject.toml:

    [project.entry-points."effbench.backends"]
    onnx-reference = "onnx_reference:ReferenceBackend"

then `bench run --model efficientvit_m0 --backend onnxref`. See docs/extending.md.
"""

from __future__ import annotations

from pydantic import Field

from effbench.backends.base import Backend, BackendOptions, Session, package_version


class ReferenceOptions(BackendOptions):
    verbose: int = Field(0, ge=0, le=4, description="onnx.reference's own verbosity")


class ReferenceSession(Session):
    def __init__(self, evaluator):
        super().__init__()
        self.evaluator, self.feed, self.last = evaluator, {}, None

    def bind(self, inputs):
        self.feed = dict(inputs)

    def run(self):
        self.last = self.evaluator.run(None, self.feed)

    def outputs(self):
        return [out.copy() for out in self.last or []]


class ReferenceBackend(Backend):
    name = "onnx-reference"
    aliases = ("onnxref",)
    artifact_format = "onnx"  # the export pipeline makes (and caches) the ONNX file it gets
    description = "ONNX's reference evaluator (numpy): slow, exact"
    Options = ReferenceOptions
    packages = ("onnx",)

    def version(self):
        return package_version("onnx")

    def open(self, artifact, settings):
        from onnx.reference import ReferenceEvaluator

        session = ReferenceSession(ReferenceEvaluator(artifact.path, verbose=settings.runtime_options["verbose"]))
        session.precision_ran = "fp32"
        session.runtime_info = {"evaluator": "onnx.reference.ReferenceEvaluator"}
        return session
