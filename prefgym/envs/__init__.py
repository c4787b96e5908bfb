"""The Gymnasium environments of prefgym and their registration."""
