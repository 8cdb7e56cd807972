"""Training pipeline: log dialects, a live follower, convergence and speed criteria."""
