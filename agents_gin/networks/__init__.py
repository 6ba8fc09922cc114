"""Policy and value networks, and the action distributions they return."""
