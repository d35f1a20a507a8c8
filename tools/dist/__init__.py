"""A parameter-server job (job), its processes placed by SLURM's task variables (slurm),
and the guard its remote processes run under (remote_guard, standard library only: it is
sent over ssh). Used by tools/launch.py."""
