"""The application on top of the core (baocao/), the stages (tasks/) and the flows (flows/):
the command line (`baocao ...`), `baocao serve` and the demo. Nothing below imports it."""
