"""abduce inside a beamline's own tools: an abduce campaign as a bluesky-adaptive optimizer."""
