"""A GitHub REST API stand-in validated against GitHub's OpenAPI description (tests only)."""

from .server import COPILOT_LOGIN, Fault, GitHubStandin, LogEntry

__all__ = ["COPILOT_LOGIN", "Fault", "GitHubStandin", "LogEntry"]
