"""Multi-process helpers on top of `torch.distributed` (env:// rendezvous).

Two ways to get N processes, both ending in `init_from_env()`:

* `torchrun --nproc-per-node N train.py ...` sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR /
  MASTER_PORT itself;
* `train.py --gpus N` calls `spawn(fn, N, ...)`, which picks a free port and starts N processes
  with the same variables set.

Backend: nccl when training on CUDA, gloo on CPU. A single process never initialises a
process group; every helper below then degrades to the trivial single-process answer, so
training code can call them unconditionally.
"""

import os
import socket

import torch
import torch.distributed as dist

ENV_KEYS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    return get_rank() == 0


def print0(*args, **kwargs):
    """print() on rank 0 only (other ranks would repeat every line)."""
    if is_main():
        print(*args, **kwargs, flush=True)


def env_world_size() -> int:
    """WORLD_SIZE from the environment (torchrun or our spawner), 1 when absent."""
    return int(os.environ.get('WORLD_SIZE', '1'))


def launched_by_torchrun() -> bool:
    return 'RANK' in os.environ and 'WORLD_SIZE' in os.environ and 'TORCHELASTIC_RUN_ID' in os.environ


def local_device(device: torch.device) -> torch.device:
    """The device this process trains on: cuda:LOCAL_RANK for CUDA, the given device otherwise."""
    if device.type == 'cuda' and device.index is None:
        return torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0')))
    return device


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group described by the environment; return this rank's device."""
    device = local_device(device)
    if env_world_size() <= 1 or is_initialized():
        return device
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    backend = 'nccl' if device.type == 'cuda' else 'gloo'
    dist.init_process_group(backend=backend, init_method='env://')
    return device


def shutdown():
    if is_initialized():
        dist.destroy_process_group()


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _spawned_worker(local_rank: int, fn, world_size: int, port: int, args: tuple):
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    # Processes share the machine's cores; without this each would start one thread per core.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    fn(*args)


def spawn(fn, world_size: int, args: tuple = ()):
    """Run `fn(*args)` in `world_size` fresh processes that can call `init_from_env()`."""
    import torch.multiprocessing as mp
    port = find_free_port()
    mp.spawn(_spawned_worker, args=(fn, world_size, port, args), nprocs=world_size, join=True)


# ----------------------------------------------------------------------------------------------
# Collectives that are no-ops in a single process.

def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    if is_initialized() and get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean_(tensor: torch.Tensor) -> torch.Tensor:
    if is_initialized() and get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= get_world_size()
    return tensor


def broadcast_object(obj, src: int = 0):
    """Rank `src`'s value of a picklable object, on every rank."""
    if not (is_initialized() and get_world_size() > 1):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def broadcast_module_(module: torch.nn.Module, src: int = 0):
    """Copy rank `src`'s parameters and buffers into every rank's module (in place)."""
    if not (is_initialized() and get_world_size() > 1):
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.numel() > 0:
                dist.broadcast(tensor.data, src=src)


def _float_buffers(module: torch.nn.Module) -> list[torch.Tensor]:
    return [b for b in module.buffers() if b.is_floating_point() and b.numel() > 0]


def buffer_snapshot(module: torch.nn.Module) -> list[torch.Tensor] | None:
    """Copies of the floating-point buffers, for `merge_buffer_updates_` (None in one process)."""
    if not (is_initialized() and get_world_size() > 1):
        return None
    return [b.detach().clone() for b in _float_buffers(module)]


def merge_buffer_updates_(module: torch.nn.Module, before: list[torch.Tensor] | None):
    """Apply every rank's change of the running-statistics buffers (w_avg, magnitude EMAs).

    Each rank updated its buffers from its own chunks; adding up the changes equals, to first
    order in the EMA rate, the sequential updates one process makes for the same chunks, and
    keeps all replicas identical. Unchanged buffers stay bit-identical (their changes are 0).
    """
    if before is None:
        return
    buffers = _float_buffers(module)
    if not buffers:
        return
    delta = torch.cat([(b.detach() - b0).flatten() for b, b0 in zip(buffers, before)])
    all_reduce_sum_(delta)
    offset = 0
    for b, b0 in zip(buffers, before):
        b.copy_(b0 + delta[offset:offset + b.numel()].view_as(b))
        offset += b.numel()


def barrier():
    if is_initialized() and get_world_size() > 1:
        dist.barrier()
