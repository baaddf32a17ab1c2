"""What an event means for the directory: plans of steps, the engine that runs and rolls
them back, names, security descriptors and the keys a job opens passwords with."""
