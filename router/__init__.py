"""Router and tasks: reloadable routing policies, routing decisions, task execution and runtime metrics."""
