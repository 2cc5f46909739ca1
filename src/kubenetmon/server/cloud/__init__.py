"""Cloud provider IP ranges: parse the vendors' files, answer longest-prefix matches, keep them fresh."""
