from tests.pipeline.conftest import spine_rt  # noqa: F401 - the pipeline's runtime with its small inventory
