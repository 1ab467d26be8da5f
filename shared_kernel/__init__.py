"""What every context shares: envelope, aggregate base, value objects, runtime."""
