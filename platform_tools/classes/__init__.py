"""Class mode: a roster to a ready classroom, its sessions prewarmed, its close and report."""
