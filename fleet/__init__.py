"""The operator's command-line tool: ``devops`` (run the fleet, publish by hand, …)."""
