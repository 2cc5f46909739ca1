"""Pure decisions: whose bytes these are, which way they went and what they cost. No I/O here."""
