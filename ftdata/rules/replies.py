"""Rules (placeholder until implemented)."""
