"""torchrun / DDP set-up: one process per GPU (or CPU process with gloo), rank-0-only output.

``torchrun --nproc_per_node 2 -m training_cli train ...`` sets RANK, LOCAL_RANK, WORLD_SIZE and the
rendezvous variables; without them this is a single process.
"""

from __future__ import annotations

import dataclasses
import datetime
import os

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device_type: str, timeout_minutes: float = 10) -> DistInfo:
    """Initialise the process group when launched by torchrun (NCCL on CUDA with a GPU per
    process, else gloo). ``timeout_minutes``: how long a collective (a barrier) waits for the
    slowest rank before failing."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    info = DistInfo(
        int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ["WORLD_SIZE"])
    )
    backend = "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(cuda_index(info))
        # NCCL needs a GPU per process; more processes on a node than its GPUs (a check on one
        # GPU) share them over gloo
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", info.world_size))
        if per_node <= torch.cuda.device_count():
            backend = "nccl"
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return info


def cuda_index(info: DistInfo) -> int:
    """The GPU of this process: its local rank, wrapped round where there are fewer GPUs."""
    return info.local_rank % max(torch.cuda.device_count(), 1)


def teardown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_ranks_agree(value: float) -> bool:
    """True when every rank passes the same value (used to check that replicas stayed in sync)."""
    if not (dist.is_available() and dist.is_initialized()):
        return True
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return all(v == gathered[0] for v in gathered)


def gather_objects(value) -> list:
    """Every rank's ``value``, in rank order (``[value]`` in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def any_rank_flag(flag: bool, device: torch.device) -> bool:
    """True if any rank raised ``flag`` (a stop request seen by one rank stops them all together)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
