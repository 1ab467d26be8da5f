"""Source Control: repositories, branches, commits and pull requests."""
