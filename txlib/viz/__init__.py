"""Pictures of runs: space-time and state-machine diagrams, the console view and the lab widget."""
