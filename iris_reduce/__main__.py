"""``python -m iris_reduce`` = the ``iris-reduce`` command."""
from iris_reduce.cli import main

main(prog_name="iris-reduce")
